// Multi-tau counting (record layout in counting_multitau.hpp).
#include "ionmsm/counting_multitau.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

using MR = MultiTauRecord;
const char* const kCorrupt = "TransitionCounter::add_atom_sample: corrupt history record (";

bool fits_int32(std::int64_t v) {
  return v >= std::numeric_limits<std::int32_t>::min() &&
         v <= std::numeric_limits<std::int32_t>::max();
}

// radix R of the packed image offsets: nsites * R^3 <= 2^53 (exact integers in a double),
// R <= 2^16
std::int64_t multitau_radix(std::size_t nsites) {
  const double room = std::ldexp(1.0, 53) / static_cast<double>(nsites);
  std::int64_t r = std::min<std::int64_t>(std::int64_t{1} << 16,
                                          static_cast<std::int64_t>(std::cbrt(room)) + 1);
  while (r > 1 && static_cast<double>(r) * r * r * static_cast<double>(nsites) >
                      std::ldexp(1.0, 53))
    --r;
  if (r < 3) throw std::invalid_argument("TransitionCounter: too many sites for multitau records");
  return r;
}

}  // namespace

MultiTauCounter::MultiTauCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples,
                                 std::int64_t m)
    : HistoryCounter(nsites, std::move(lag_samples)), m_(m) {
  if (m_ < 1 || m_ > CountingConfig::kMaxMultiTauM) {
    throw std::invalid_argument("TransitionCounter: multitau M must be in [1, " +
                                std::to_string(CountingConfig::kMaxMultiTauM) + "], got " +
                                std::to_string(m_));
  }
  for (std::int64_t l : lags_) {
    const int k = multitau_level(l, m_);
    if (k < 0) {
      const auto nb = multitau_neighbours(l, m_);
      throw std::invalid_argument(
          "TransitionCounter: lag " + std::to_string(l) +
          " samples cannot be counted exactly with multitau M = " + std::to_string(m_) +
          " (representable lags are j * 2^k with 1 <= j <= M); nearest representable: " +
          (nb.first > 0 ? std::to_string(nb.first) + " and " : std::string()) +
          std::to_string(nb.second) + " samples");
    }
    lag_level_.push_back(k);
    if (std::find(levels_.begin(), levels_.end(), k) == levels_.end()) levels_.push_back(k);
  }
  std::sort(levels_.begin(), levels_.end());
  for (int k : lag_level_)
    lag_slot_.push_back(static_cast<int>(std::find(levels_.begin(), levels_.end(), k) -
                                         levels_.begin()));
  level_ring_.assign(levels_.size(), std::vector<std::int64_t>(static_cast<std::size_t>(m_), -1));
  radix_ = multitau_radix(nsites);
}

std::unique_ptr<HistoryCounter> MultiTauCounter::clone() const {
  return std::make_unique<MultiTauCounter>(*this);
}

int MultiTauCounter::doubles_per_atom() const {
  return MR::kHeader + static_cast<int>(levels_.size() * static_cast<std::size_t>(m_));
}

void MultiTauCounter::clear_history(double* record) const {
  const int n = doubles_per_atom();
  record[MR::kValidSince] = -1.0;
  record[MR::kLastSample] = -1.0;
  for (int i = MR::kBase; i < n; ++i) record[i] = 0.0;
}

double MultiTauCounter::encode(const SiteImage& s, const double* base) const {
  const std::int64_t half = radix_ / 2;
  std::int64_t e[3];
  for (int d = 0; d < 3; ++d) {
    const std::int64_t o = static_cast<std::int64_t>(s.image[static_cast<std::size_t>(d)]) -
                           static_cast<std::int64_t>(base[d]) + half;
    if (o < 0 || o >= radix_) return -1.0;
    e[d] = o;
  }
  const std::int64_t ns = static_cast<std::int64_t>(occupancy_.size());
  return static_cast<double>(s.site + ns * (e[0] + radix_ * (e[1] + radix_ * e[2])));
}

bool MultiTauCounter::decode(double v, const double* base, SiteImage& out) const {
  const std::int64_t ns = static_cast<std::int64_t>(occupancy_.size());
  const double limit = static_cast<double>(ns) * static_cast<double>(radix_) *
                       static_cast<double>(radix_) * static_cast<double>(radix_);
  if (!(v >= 0.0 && v < limit && v == std::floor(v))) return false;
  std::int64_t u = static_cast<std::int64_t>(v);
  out.site = static_cast<SiteIndex>(u % ns);
  u /= ns;
  const std::int64_t half = radix_ / 2;
  for (int d = 0; d < 3; ++d) {
    const std::int64_t img = u % radix_ - half + static_cast<std::int64_t>(base[d]);
    if (!fits_int32(img)) return false;
    out.image[static_cast<std::size_t>(d)] = static_cast<std::int32_t>(img);
    u /= radix_;
  }
  return true;
}

// ------------------------------------------------------------------------------ clock

void MultiTauCounter::advance_clock(std::int64_t sample_index) {
  // Read every lag's origin before overwriting the level slots.
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    const int k = lag_level_[i];
    const std::int64_t j = sample_index - lags_[i];
    bool ok = false;
    if (j >= 0 && sample_index % (std::int64_t{1} << k) == 0) {
      const auto& ring = level_ring_[static_cast<std::size_t>(lag_slot_[i])];
      ok = ring[static_cast<std::size_t>((j >> k) % m_)] == j;
    }
    origin_ok_[i] = ok ? 1 : 0;
    if (ok) ++origins_[i];
  }
  for (std::size_t li = 0; li < levels_.size(); ++li) {
    const int k = levels_[li];
    if (sample_index % (std::int64_t{1} << k) == 0)
      level_ring_[li][static_cast<std::size_t>((sample_index >> k) % m_)] = sample_index;
  }
  previous_ = have_current_ ? current_ : -1;
}

// [previous, level rings]
void MultiTauCounter::pack_clock_tail(std::vector<std::int64_t>& out) const {
  out.push_back(previous_);
  for (const auto& ring : level_ring_) out.insert(out.end(), ring.begin(), ring.end());
}

std::size_t MultiTauCounter::clock_tail_size() const {
  return 1 + levels_.size() * static_cast<std::size_t>(m_);
}

void MultiTauCounter::unpack_clock_tail(const std::int64_t* tail, std::size_t /*n*/,
                                        std::int64_t current, bool have) {
  const char* who = "TransitionCounter::unpack_clock: ";
  const std::int64_t prev = tail[0];
  if (prev < -1 || (have && prev >= current) || (!have && prev != -1))
    throw std::invalid_argument(std::string(who) + "invalid previous sample " +
                                std::to_string(prev));
  const std::int64_t* rings = tail + 1;
  for (std::size_t li = 0; li < levels_.size(); ++li) {
    const int k = levels_[li];
    for (std::int64_t sl = 0; sl < m_; ++sl) {
      const std::int64_t v = rings[static_cast<std::int64_t>(li) * m_ + sl];
      if (v == -1) continue;
      if (v < 0 || v % (std::int64_t{1} << k) != 0 || (v >> k) % m_ != sl || !have || v > current)
        throw std::invalid_argument(std::string(who) + "invalid sample " + std::to_string(v) +
                                    " in slot " + std::to_string(sl) + " of level " +
                                    std::to_string(k));
    }
  }
  previous_ = prev;
  for (std::size_t li = 0; li < levels_.size(); ++li)
    level_ring_[li].assign(rings + static_cast<std::int64_t>(li) * m_,
                           rings + static_cast<std::int64_t>(li + 1) * m_);
}

// ------------------------------------------------------------------------------ per atom

void MultiTauCounter::add(double* record, const SiteImage& now) {
  const std::int64_t t = current_;
  const bool continues = previous_ >= 0 && record[MR::kValidSince] >= 0.0 &&
                         record[MR::kLastSample] == static_cast<double>(previous_);
  double* base = record + MR::kBase;
  scratch_from_.resize(lags_.size());  // reused: no allocation per atom
  scratch_use_.assign(lags_.size(), 0);
  if (continues) read_origins(record, now);
  count_pairs(now);
  // store
  if (!continues) {
    record[MR::kValidSince] = static_cast<double>(t);
    for (std::size_t d = 0; d < 3; ++d) base[d] = static_cast<double>(now.image[d]);
  }
  record[MR::kLastSample] = static_cast<double>(t);
  bool fits = true;
  for (std::size_t li = 0; li < levels_.size() && fits; ++li)
    if (t % (std::int64_t{1} << levels_[li]) == 0) fits = encode(now, base) >= 0.0;
  if (!fits) rebase(record, now);
  for (std::size_t li = 0; li < levels_.size(); ++li) {
    const int k = levels_[li];
    if (t % (std::int64_t{1} << k) != 0) continue;
    level_entries(record, li)[static_cast<std::size_t>((t >> k) % m_)] = encode(now, base);
  }
}

void MultiTauCounter::read_origins(const double* record, const SiteImage& now) {
  // An entry equal to the current site image's own encoding (same base) is that site image:
  // a stay with zero shift (use 2), valid without decoding (the common case: no hop within
  // the lag).
  const std::int64_t t = current_;
  const double* base = record + MR::kBase;
  const double vnow = encode(now, base);
  const double vs = record[MR::kValidSince];
  if (!(vs == std::floor(vs) && vs <= static_cast<double>(previous_)))
    throw std::invalid_argument(std::string(kCorrupt) + "valid_since " + std::to_string(vs) + ")");
  for (int d = 0; d < 3; ++d)
    if (!(std::abs(base[d]) <= 1.0e9 && base[d] == std::floor(base[d])))
      throw std::invalid_argument(std::string(kCorrupt) + "base image " +
                                  std::to_string(base[d]) + ")");
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (!origin_ok_[i]) continue;
    const std::int64_t j = t - lags_[i];
    if (static_cast<double>(j) < vs) continue;
    const int k = lag_level_[i];
    const double v = record[MR::kHeader +
                            static_cast<std::size_t>(lag_slot_[i]) * static_cast<std::size_t>(m_) +
                            static_cast<std::size_t>((j >> k) % m_)];
    if (v == vnow) {  // vnow >= 0: a valid encoding
      scratch_use_[i] = 2;
      continue;
    }
    if (!decode(v, base, scratch_from_[i]))
      throw std::invalid_argument(std::string(kCorrupt) + "entry " + std::to_string(v) +
                                  " at sample " + std::to_string(j) + ")");
    for (std::size_t d = 0; d < 3; ++d) {
      const std::int64_t sh = static_cast<std::int64_t>(now.image[d]) - scratch_from_[i].image[d];
      if (!fits_int32(sh))
        throw std::invalid_argument("TransitionCounter::add_atom_sample: lattice shift overflows");
    }
    scratch_use_[i] = 1;
  }
}

void MultiTauCounter::count_pairs(const SiteImage& now) {
  ++occupancy_[static_cast<std::size_t>(now.site)];
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (!scratch_use_[i]) continue;
    if (scratch_use_[i] == 2) {
      tables_[i].add_stay(now.site);
      continue;
    }
    const SiteImage& from = scratch_from_[i];
    Image shift;
    for (std::size_t d = 0; d < 3; ++d) shift[d] = now.image[d] - from.image[d];
    tables_[i].add(from.site, now.site, shift);
    if (has_moments() &&
        (from.site != now.site || shift[0] != 0 || shift[1] != 0 || shift[2] != 0))
      add_moment(i, from.site, now.site, shift);
  }
}

void MultiTauCounter::rebase(double* record, const SiteImage& now) const {
  // every valid entry: sampled at or after valid_since, before t, still in its level's ring
  const std::int64_t t = current_;
  double* base = record + MR::kBase;
  double nb[3] = {static_cast<double>(now.image[0]), static_cast<double>(now.image[1]),
                  static_cast<double>(now.image[2])};
  std::vector<std::pair<double*, double>> rewritten;
  for (std::size_t li = 0; li < levels_.size(); ++li) {
    double* ent = level_entries(record, li);
    for (std::int64_t sl = 0; sl < m_; ++sl) {
      const std::int64_t j = level_ring_[li][static_cast<std::size_t>(sl)];
      if (j < 0 || j >= t || static_cast<double>(j) < record[MR::kValidSince]) continue;
      double* e = ent + sl;
      SiteImage old;
      if (!decode(*e, base, old))
        throw std::invalid_argument(std::string(kCorrupt) + "entry " + std::to_string(*e) + ")");
      const double v = encode(old, nb);
      if (v < 0.0)
        throw std::invalid_argument(
            "TransitionCounter::add_atom_sample: an atom moved more than " +
            std::to_string(radix_ / 2 - 1) +
            " periodic images within its multitau history window; cannot store it");
      rewritten.emplace_back(e, v);
    }
  }
  for (const auto& [e, v] : rewritten) *e = v;
  for (int d = 0; d < 3; ++d) base[d] = nb[d];
}

}  // namespace ionmsm
