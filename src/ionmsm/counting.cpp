// Transition counting (semantics in counting.hpp).
#include "ionmsm/counting.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

// Packed key layout (63 bits): from (21) | to (21) | sx+64 (7) | sy+64 (7) | sz+64 (7).
// Adding 64 to each shift keeps the key order equal to the (from, to, shift) order.
constexpr int kSiteBits = 21;
constexpr int kShiftBits = 7;
constexpr std::int64_t kSiteLimit = std::int64_t{1} << kSiteBits;
constexpr std::int32_t kShiftMin = -(1 << (kShiftBits - 1));     // -64
constexpr std::int32_t kShiftMax = (1 << (kShiftBits - 1)) - 1;  // 63
constexpr std::uint64_t kShiftMask = (std::uint64_t{1} << kShiftBits) - 1;
constexpr std::uint64_t kSiteMask = (std::uint64_t{1} << kSiteBits) - 1;

std::int64_t to_i64(std::uint64_t u) {
  std::int64_t v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
std::uint64_t to_u64(std::int64_t v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

bool fits_int32(std::int64_t v) {
  return v >= std::numeric_limits<std::int32_t>::min() &&
         v <= std::numeric_limits<std::int32_t>::max();
}

}  // namespace

// ----------------------------------------------------------------------------------- CountTable

CountTable::CountTable(std::size_t nsites) : stay_(nsites, 0) {}

bool CountTable::pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key) {
  if (from < 0 || to < 0 || from >= kSiteLimit || to >= kSiteLimit) return false;
  for (std::int32_t s : shift)
    if (s < kShiftMin || s > kShiftMax) return false;
  key = (static_cast<std::uint64_t>(from) << (kSiteBits + 3 * kShiftBits)) |
        (static_cast<std::uint64_t>(to) << (3 * kShiftBits)) |
        (static_cast<std::uint64_t>(shift[0] - kShiftMin) << (2 * kShiftBits)) |
        (static_cast<std::uint64_t>(shift[1] - kShiftMin) << kShiftBits) |
        static_cast<std::uint64_t>(shift[2] - kShiftMin);
  return true;
}

void CountTable::add(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t n) {
  const std::size_t ns = stay_.size();
  if (from < 0 || to < 0 || static_cast<std::size_t>(from) >= ns ||
      static_cast<std::size_t>(to) >= ns) {
    throw std::invalid_argument("CountTable::add: site index out of range (from " +
                                std::to_string(from) + ", to " + std::to_string(to) + ", " +
                                std::to_string(ns) + " sites)");
  }
  if (n == 0) return;
  if (from == to && shift[0] == 0 && shift[1] == 0 && shift[2] == 0) {
    stay_[static_cast<std::size_t>(from)] += n;
    return;
  }
  std::uint64_t key = 0;
  if (pack(from, to, shift, key)) {
    bump_packed(key, n);
  } else {
    CountKey k;
    k.from = from;
    k.to = to;
    k.shift = shift;
    overflow_[k] += n;
  }
}

void CountTable::grow_packed() {
  std::vector<PackedSlot> old;
  old.swap(packed_);
  const std::size_t cap = old.empty() ? 64 : 2 * old.size();
  packed_.assign(cap, PackedSlot{kEmptyKey, 0});
  int bits = 0;
  while ((std::size_t{1} << bits) < cap) ++bits;
  packed_shift_ = 64 - bits;
  const std::size_t mask = cap - 1;
  for (const PackedSlot& e : old) {
    if (e.key == kEmptyKey) continue;
    std::size_t h = static_cast<std::size_t>((e.key * 0x9E3779B97F4A7C15ull) >> packed_shift_);
    while (packed_[h].key != kEmptyKey) h = (h + 1) & mask;
    packed_[h] = e;
  }
}

void CountTable::bump_packed(std::uint64_t key, std::uint64_t n) {
  if (2 * (packed_used_ + 1) > packed_.size()) grow_packed();
  const std::size_t mask = packed_.size() - 1;
  std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> packed_shift_);
  for (;;) {
    PackedSlot& e = packed_[h];
    if (e.key == key) {
      e.n += n;
      return;
    }
    if (e.key == kEmptyKey) {
      e.key = key;
      e.n = n;
      ++packed_used_;
      return;
    }
    h = (h + 1) & mask;
  }
}

void CountTable::add_moving(SiteIndex from, SiteIndex to, const Image& shift) {
  std::uint64_t key = 0;
  if (pack(from, to, shift, key)) {
    bump_packed(key, 1);
  } else {
    CountKey k;
    k.from = from;
    k.to = to;
    k.shift = shift;
    ++overflow_[k];
  }
}

void CountTable::unpack(std::uint64_t key, SiteIndex& from, SiteIndex& to, Image& shift) {
  from = static_cast<SiteIndex>((key >> (kSiteBits + 3 * kShiftBits)) & kSiteMask);
  to = static_cast<SiteIndex>((key >> (3 * kShiftBits)) & kSiteMask);
  shift[0] = static_cast<std::int32_t>((key >> (2 * kShiftBits)) & kShiftMask) + kShiftMin;
  shift[1] = static_cast<std::int32_t>((key >> kShiftBits) & kShiftMask) + kShiftMin;
  shift[2] = static_cast<std::int32_t>(key & kShiftMask) + kShiftMin;
}

std::vector<TransitionCount> CountTable::rows() const {
  std::vector<TransitionCount> out;
  out.reserve(packed_used_ + overflow_.size() + stay_.size() / 4);
  for (std::size_t s = 0; s < stay_.size(); ++s) {
    if (stay_[s] == 0) continue;
    TransitionCount r;
    r.from = static_cast<SiteIndex>(s);
    r.to = r.from;
    r.count = stay_[s];
    out.push_back(r);
  }
  for (const PackedSlot& e : packed_) {
    const std::uint64_t key = e.key, n = e.n;
    if (key == kEmptyKey || n == 0) continue;
    TransitionCount r;
    unpack(key, r.from, r.to, r.shift);
    r.count = n;
    out.push_back(r);
  }
  for (const auto& [k, n] : overflow_) {
    if (n == 0) continue;
    TransitionCount r;
    r.from = k.from;
    r.to = k.to;
    r.shift = k.shift;
    r.count = n;
    out.push_back(r);
  }
  // Each (from, to, shift) lives in exactly one of the three containers, so no merging of
  // equal keys is needed; only the order.
  std::sort(out.begin(), out.end(), [](const TransitionCount& a, const TransitionCount& b) {
    if (a.from != b.from) return a.from < b.from;
    if (a.to != b.to) return a.to < b.to;
    return a.shift < b.shift;
  });
  return out;
}

std::uint64_t CountTable::total() const {
  std::uint64_t t = 0;
  for (std::uint64_t n : stay_) t += n;
  for (const PackedSlot& e : packed_)
    if (e.key != kEmptyKey) t += e.n;
  for (const auto& kv : overflow_) t += kv.second;
  return t;
}

void CountTable::clear() {
  std::fill(stay_.begin(), stay_.end(), 0);
  std::fill(packed_.begin(), packed_.end(), PackedSlot{kEmptyKey, 0});
  packed_used_ = 0;
  overflow_.clear();
}

// ---------------------------------------------------------------------------- TransitionCounter

int multitau_level(std::int64_t lag, std::int64_t m) {
  if (lag < 1 || m < 1) return -1;
  for (int k = 0; k < 62; ++k) {
    const std::int64_t p = std::int64_t{1} << k;
    if (lag % p != 0) return -1;
    if (lag / p <= m) return k;
  }
  return -1;
}

std::pair<std::int64_t, std::int64_t> multitau_neighbours(std::int64_t lag, std::int64_t m) {
  std::int64_t below = 0, above = std::numeric_limits<std::int64_t>::max();
  if (m < 1) return {below, above};
  for (int k = 0; k < 62; ++k) {
    const std::int64_t p = std::int64_t{1} << k;
    // j * p < lag with j <= m, largest
    const std::int64_t jlo = std::min(m, (lag - 1) / p);
    if (jlo >= 1) below = std::max(below, jlo * p);
    // j * p > lag with j <= m, smallest
    const std::int64_t jhi = lag / p + 1;
    if (jhi <= m && jhi <= std::numeric_limits<std::int64_t>::max() / p) above = std::min(above, jhi * p);
  }
  return {below, above};
}

TransitionCounter::TransitionCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples,
                                     HistoryConfig history)
    : history_(history) {
  if (nsites == 0)
    throw std::invalid_argument("TransitionCounter: the number of sites must be > 0");
  if (nsites > static_cast<std::size_t>(std::numeric_limits<SiteIndex>::max())) {
    throw std::invalid_argument("TransitionCounter: too many sites (" + std::to_string(nsites) +
                                "); at most " +
                                std::to_string(std::numeric_limits<SiteIndex>::max()));
  }
  if (lag_samples.empty()) throw std::invalid_argument("TransitionCounter: no lags given");
  for (std::size_t i = 0; i < lag_samples.size(); ++i) {
    if (lag_samples[i] < 1) {
      throw std::invalid_argument("TransitionCounter: lags must be >= 1 sample, got " +
                                  std::to_string(lag_samples[i]));
    }
    if (i > 0 && lag_samples[i] <= lag_samples[i - 1]) {
      throw std::invalid_argument("TransitionCounter: lags must be strictly increasing, got " +
                                  std::to_string(lag_samples[i - 1]) + " then " +
                                  std::to_string(lag_samples[i]));
    }
  }
  if (history_.mode == HistoryConfig::Mode::Full) {
    if (lag_samples.back() > std::numeric_limits<int>::max() / 2) {
      throw std::invalid_argument("TransitionCounter: the longest lag (" +
                                  std::to_string(lag_samples.back()) +
                                  " samples) is too long for a per-atom history");
    }
    lag_level_.assign(lag_samples.size(), 0);
    // entries site + S (e_x + R (e_y + R e_z)) with S = 2^sbits >= nsites, R = 2^rbits
    int sb = 0;
    while ((std::size_t{1} << sb) < nsites) ++sb;
    full_sbits_ = sb;
    full_rbits_ = std::min(16, (53 - sb) / 3);  // sb <= 31 -> rbits >= 7
    radix_ = std::int64_t{1} << full_rbits_;
    full_limit_ = std::ldexp(1.0, full_sbits_ + 3 * full_rbits_);
  } else {
    if (history_.m < 1 || history_.m > kMaxMultiTauM) {
      throw std::invalid_argument("TransitionCounter: multitau M must be in [1, " +
                                  std::to_string(kMaxMultiTauM) + "], got " +
                                  std::to_string(history_.m));
    }
    for (std::int64_t l : lag_samples) {
      const int k = multitau_level(l, history_.m);
      if (k < 0) {
        const auto nb = multitau_neighbours(l, history_.m);
        throw std::invalid_argument(
            "TransitionCounter: lag " + std::to_string(l) +
            " samples cannot be counted exactly with multitau M = " + std::to_string(history_.m) +
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
    level_ring_.assign(levels_.size(),
                       std::vector<std::int64_t>(static_cast<std::size_t>(history_.m), -1));
    origin_ok_.assign(lag_samples.size(), 0);
    // radix: nsites * R^3 <= 2^53 (exact integers in a double), R <= 2^16
    const double room = std::ldexp(1.0, 53) / static_cast<double>(nsites);
    std::int64_t r = std::min<std::int64_t>(std::int64_t{1} << 16,
                                            static_cast<std::int64_t>(std::cbrt(room)) + 1);
    while (r > 1 && static_cast<double>(r) * r * r * static_cast<double>(nsites) >
                        std::ldexp(1.0, 53))
      --r;
    if (r < 3)
      throw std::invalid_argument("TransitionCounter: too many sites for multitau records");
    radix_ = r;
  }
  lags_ = std::move(lag_samples);
  tables_.assign(lags_.size(), CountTable(nsites));
  origins_.assign(lags_.size(), 0);
  occupancy_.assign(nsites, 0);
  disp_sum_.assign(lags_.size(), Eigen::Vector3d::Zero());
  disp_sq_.assign(lags_.size(), Eigen::Matrix3d::Zero());
  if (history_.mode == HistoryConfig::Mode::Full) {
    recent_.assign(static_cast<std::size_t>(lags_.back()), -1);
    origin_ok_.assign(lags_.size(), 0);
    rates_.resize(lags_.size());
    for (LagRates& r : rates_) {
      r.stay_rate.assign(nsites, 0);
      r.stay_stamp.assign(nsites, 0);
    }
    occ_rate_.assign(nsites, 0);
    occ_stamp_.assign(nsites, 0);
    clk_.assign(lags_.size(), 0);
    clk_prev_.assign(lags_.size(), 0);
    lag_index_.assign(static_cast<std::size_t>(lags_.back()) + 1, -1);
    for (std::size_t i = 0; i < lags_.size(); ++i)
      lag_index_[static_cast<std::size_t>(lags_[i])] = static_cast<std::int32_t>(i);
  }
}

int TransitionCounter::doubles_per_atom() const {
  if (history_.mode == HistoryConfig::Mode::Full)
    return kFullHeader + static_cast<int>(max_lag_samples()) + 1 + kFullChanges +
           static_cast<int>(lags_.size());
  return kMultiTauHeader + static_cast<int>(levels_.size() * static_cast<std::size_t>(history_.m));
}

void TransitionCounter::set_site_fractional(const std::vector<Eigen::Vector3d>& frac) {
  if (frac.size() != occupancy_.size()) {
    throw std::invalid_argument("TransitionCounter::set_site_fractional: " +
                                std::to_string(frac.size()) + " coordinates for " +
                                std::to_string(occupancy_.size()) + " sites");
  }
  for (const auto& f : frac)
    if (!f.allFinite())
      throw std::invalid_argument(
          "TransitionCounter::set_site_fractional: non-finite fractional coordinate");
  site_frac_ = frac;
}

void TransitionCounter::add_moment(std::size_t i, SiteIndex from, SiteIndex to,
                                   const Image& shift, double weight) const {
  const Eigen::Vector3d df = site_frac_[static_cast<std::size_t>(to)] -
                             site_frac_[static_cast<std::size_t>(from)] +
                             Eigen::Vector3d(shift[0], shift[1], shift[2]);
  const Eigen::Vector3d d = cell_ * df;
  disp_sum_[i] += weight * d;
  disp_sq_[i] += weight * (d * d.transpose());
}

std::vector<double> TransitionCounter::pack_moments() const {
  settle();
  std::vector<double> out;
  out.reserve(12 * lags_.size());
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    for (int a = 0; a < 3; ++a) out.push_back(disp_sum_[i][a]);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) out.push_back(disp_sq_[i](a, b));
  }
  return out;
}

void TransitionCounter::add_packed_moments(const double* data, std::size_t n) {
  if (n != 12 * lags_.size() || (n > 0 && data == nullptr)) {
    throw std::invalid_argument("TransitionCounter::add_packed_moments: expected " +
                                std::to_string(12 * lags_.size()) + " values, got " +
                                std::to_string(n));
  }
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    const double* p = data + 12 * i;
    for (int a = 0; a < 3; ++a) disp_sum_[i][a] += p[a];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) disp_sq_[i](a, b) += p[3 + 3 * a + b];
  }
}

void TransitionCounter::add_totals(std::uint64_t n_samples,
                                   const std::vector<std::uint64_t>& origins) {
  if (origins.size() != origins_.size()) {
    throw std::invalid_argument("TransitionCounter::add_totals: " + std::to_string(origins.size()) +
                                " origin counts for " + std::to_string(origins_.size()) + " lags");
  }
  n_samples_ += n_samples;
  for (std::size_t i = 0; i < origins.size(); ++i) origins_[i] += origins[i];
}

double TransitionCounter::encode(const SiteImage& s, const double* base) const {
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

bool TransitionCounter::decode(double v, const double* base, SiteImage& out) const {
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

void TransitionCounter::clear_history(double* record) const {
  if (history_.mode == HistoryConfig::Mode::MultiTau) {
    const int n = doubles_per_atom();
    record[0] = -1.0;
    record[1] = -1.0;
    for (int i = 2; i < n; ++i) record[i] = 0.0;
    return;
  }
  record[0] = -1.0;  // no sample yet
  record[1] = record[2] = record[3] = 0.0;
  record[4] = kFullTag;
  record[5] = -1.0;  // not being recorded
  record[6] = 0.0;
  record[7] = -1.0;  // no explicit entry
  double* tail = record + kFullHeader + max_lag_samples();
  std::fill(record + kFullHeader, tail, -1.0);
  tail[0] = 0.0;  // no change points
  std::fill(tail + 1, tail + 1 + kFullChanges + static_cast<std::int64_t>(lags_.size()), -1.0);
}

void TransitionCounter::begin_sample(std::int64_t sample_index) {
  if (lags_.empty()) throw std::invalid_argument("TransitionCounter: not initialised (no lags)");
  if (sample_index < 0) {
    throw std::invalid_argument("TransitionCounter::begin_sample: sample index must be >= 0, got " +
                                std::to_string(sample_index));
  }
  if (have_current_ && sample_index <= current_) {
    throw std::invalid_argument(
        "TransitionCounter::begin_sample: sample index must increase (got " +
        std::to_string(sample_index) + " after " + std::to_string(current_) + ")");
  }
  if (history_.mode == HistoryConfig::Mode::MultiTau) {
    const std::int64_t m = history_.m;
    // Read every lag's origin before overwriting the level slots.
    for (std::size_t i = 0; i < lags_.size(); ++i) {
      const int k = lag_level_[i];
      const std::int64_t j = sample_index - lags_[i];
      bool ok = false;
      if (j >= 0 && sample_index % (std::int64_t{1} << k) == 0) {
        const auto& ring = level_ring_[static_cast<std::size_t>(lag_slot_[i])];
        ok = ring[static_cast<std::size_t>((j >> k) % m)] == j;
      }
      origin_ok_[i] = ok ? 1 : 0;
      if (ok) ++origins_[i];
    }
    for (std::size_t li = 0; li < levels_.size(); ++li) {
      const int k = levels_[li];
      if (sample_index % (std::int64_t{1} << k) == 0)
        level_ring_[li][static_cast<std::size_t>((sample_index >> k) % m)] = sample_index;
    }
    previous_ = have_current_ ? current_ : -1;
  } else {
    const std::int64_t kmax = max_lag_samples();
    // Read every lag's origin before overwriting slot k (which holds k - max_lag).
    for (std::size_t i = 0; i < lags_.size(); ++i) {
      clk_prev_[i] = clk_[i];
      origin_ok_[i] = 0;
      const std::int64_t j = sample_index - lags_[i];
      if (j < 0) continue;
      if (recent_[static_cast<std::size_t>(j % kmax)] == j) {
        origin_ok_[i] = 1;
        ++origins_[i];
        ++clk_[i];
        unsettled_ = true;
      }
    }
    sclk_prev_ = sclk_++;
    unsettled_ = true;
    // Samples skipped after the first one: origins in the gap are not counted, so every atom
    // re-evaluates its pairs at every sample until the gap has left the window.
    // (the last unsampled index g is an origin up to sample g + max_lag; one sample later
    // the pairs it removed come back)
    if (have_current_ && sample_index > current_ + 1)
      dense_until_ = std::max(dense_until_, sample_index + kmax);
    prev_sample_ = have_current_ ? current_ : -1;
    recent_[static_cast<std::size_t>(sample_index % kmax)] = sample_index;
  }
  current_ = sample_index;
  have_current_ = true;
  ++n_samples_;
}

void TransitionCounter::add_atom_sample(double* record, const SiteImage& now) {
  if (!have_current_) {
    throw std::invalid_argument(
        "TransitionCounter::add_atom_sample: begin_sample() has not been called");
  }
  const std::size_t ns = occupancy_.size();
  if (now.site < 0 || static_cast<std::size_t>(now.site) >= ns) {
    throw std::invalid_argument("TransitionCounter::add_atom_sample: site index " +
                                std::to_string(now.site) + " out of range (" + std::to_string(ns) +
                                " sites)");
  }
  if (history_.mode == HistoryConfig::Mode::MultiTau)
    add_multitau(record, now);
  else
    add_full(record, now);
}

void TransitionCounter::add_multitau(double* record, const SiteImage& now) {
  const char* who = "TransitionCounter::add_atom_sample: corrupt history record (";
  const std::int64_t t = current_;
  const std::int64_t m = history_.m;
  const bool continues = previous_ >= 0 && record[0] >= 0.0 &&
                         record[1] == static_cast<double>(previous_);
  double* base = record + 2;
  const double* entries = record + kMultiTauHeader;
  std::vector<SiteImage>& from = scratch_from_;  // reused: no allocation per atom
  std::vector<char>& use = scratch_use_;
  from.resize(lags_.size());
  use.assign(lags_.size(), 0);
  if (continues) {
    // Pass 1: validate every entry that will be used before anything is modified. An entry
    // equal to the current site image's own encoding (same base) is that site image: a stay
    // with zero shift (use 2), valid without decoding (the common case: no hop within the lag).
    const double vnow = encode(now, base);
    const double vs = record[0];
    if (!(vs == std::floor(vs) && vs <= static_cast<double>(previous_)))
      throw std::invalid_argument(std::string(who) + "valid_since " + std::to_string(vs) + ")");
    for (int d = 0; d < 3; ++d)
      if (!(std::abs(base[d]) <= 1.0e9 && base[d] == std::floor(base[d])))
        throw std::invalid_argument(std::string(who) + "base image " + std::to_string(base[d]) +
                                    ")");
    for (std::size_t i = 0; i < lags_.size(); ++i) {
      if (!origin_ok_[i]) continue;
      const std::int64_t j = t - lags_[i];
      if (static_cast<double>(j) < vs) continue;
      const int k = lag_level_[i];
      const double v = entries[static_cast<std::size_t>(lag_slot_[i]) * static_cast<std::size_t>(m) +
                               static_cast<std::size_t>((j >> k) % m)];
      if (v == vnow) {  // vnow >= 0: a valid encoding
        use[i] = 2;
        continue;
      }
      if (!decode(v, base, from[i]))
        throw std::invalid_argument(std::string(who) + "entry " + std::to_string(v) +
                                    " at sample " + std::to_string(j) + ")");
      for (std::size_t d = 0; d < 3; ++d) {
        const std::int64_t sh = static_cast<std::int64_t>(now.image[d]) - from[i].image[d];
        if (!fits_int32(sh))
          throw std::invalid_argument("TransitionCounter::add_atom_sample: lattice shift overflows");
      }
      use[i] = 1;
    }
  }

  // Pass 2: count.
  ++occupancy_[static_cast<std::size_t>(now.site)];
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (!use[i]) continue;
    if (use[i] == 2) {
      tables_[i].add_stay(now.site);
      continue;
    }
    Image shift;
    for (std::size_t d = 0; d < 3; ++d) shift[d] = now.image[d] - from[i].image[d];
    tables_[i].add(from[i].site, now.site, shift);
    if (has_moments() &&
        (from[i].site != now.site || shift[0] != 0 || shift[1] != 0 || shift[2] != 0))
      add_moment(i, from[i].site, now.site, shift);
  }

  // Store.
  if (!continues) {
    record[0] = static_cast<double>(t);
    for (std::size_t d = 0; d < 3; ++d) base[d] = static_cast<double>(now.image[d]);
  }
  record[1] = static_cast<double>(t);
  double* ent = record + kMultiTauHeader;
  bool fits = true;
  for (std::size_t li = 0; li < levels_.size() && fits; ++li)
    if (t % (std::int64_t{1} << levels_[li]) == 0) fits = encode(now, base) >= 0.0;
  if (!fits) {
    // Rebase on the current image: re-encode every valid entry (sampled at or after
    // valid_since, before t, still in its level's ring).
    double nb[3] = {static_cast<double>(now.image[0]), static_cast<double>(now.image[1]),
                    static_cast<double>(now.image[2])};
    std::vector<std::pair<std::size_t, double>> rewritten;
    for (std::size_t li = 0; li < levels_.size(); ++li)
      for (std::int64_t sl = 0; sl < m; ++sl) {
        const std::int64_t j = level_ring_[li][static_cast<std::size_t>(sl)];
        if (j < 0 || j >= t || static_cast<double>(j) < record[0]) continue;
        const std::size_t pos = li * static_cast<std::size_t>(m) + static_cast<std::size_t>(sl);
        SiteImage old;
        if (!decode(ent[pos], base, old))
          throw std::invalid_argument(std::string(who) + "entry " + std::to_string(ent[pos]) + ")");
        const double v = encode(old, nb);
        if (v < 0.0)
          throw std::invalid_argument(
              "TransitionCounter::add_atom_sample: an atom moved more than " +
              std::to_string(radix_ / 2 - 1) +
              " periodic images within its multitau history window; cannot store it");
        rewritten.emplace_back(pos, v);
      }
    for (const auto& [pos, v] : rewritten) ent[pos] = v;
    for (int d = 0; d < 3; ++d) base[d] = nb[d];
  }
  for (std::size_t li = 0; li < levels_.size(); ++li) {
    const int k = levels_[li];
    if (t % (std::int64_t{1} << k) != 0) continue;
    ent[li * static_cast<std::size_t>(m) + static_cast<std::size_t>((t >> k) % m)] =
        encode(now, base);
  }
}

std::vector<std::int64_t> TransitionCounter::pack_counts() const {
  settle();
  std::vector<std::vector<TransitionCount>> per_lag(tables_.size());
  std::size_t nrows = 0;
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    per_lag[i] = tables_[i].rows();
    nrows += per_lag[i].size();
  }
  std::vector<std::int64_t> out;
  out.reserve(2 + occupancy_.size() + 7 * nrows);
  out.push_back(static_cast<std::int64_t>(occupancy_.size()));
  out.push_back(static_cast<std::int64_t>(nrows));
  for (std::uint64_t o : occupancy_) out.push_back(to_i64(o));
  for (std::size_t i = 0; i < per_lag.size(); ++i) {
    for (const TransitionCount& r : per_lag[i]) {
      out.push_back(static_cast<std::int64_t>(i));
      out.push_back(r.from);
      out.push_back(r.to);
      out.push_back(r.shift[0]);
      out.push_back(r.shift[1]);
      out.push_back(r.shift[2]);
      out.push_back(to_i64(r.count));
    }
  }
  return out;
}

void TransitionCounter::add_packed_counts(const std::int64_t* data, std::size_t n) {
  const char* who = "TransitionCounter::add_packed_counts: ";
  if (n < 2 || data == nullptr) {
    throw std::invalid_argument(std::string(who) + "buffer too short (" + std::to_string(n) +
                                " values)");
  }
  const std::size_t ns = occupancy_.size();
  if (data[0] < 0 || static_cast<std::uint64_t>(data[0]) != ns) {
    throw std::invalid_argument(std::string(who) + "buffer is for " + std::to_string(data[0]) +
                                " sites, this counter has " + std::to_string(ns));
  }
  if (data[1] < 0) {
    throw std::invalid_argument(std::string(who) + "negative row count " + std::to_string(data[1]));
  }
  const std::uint64_t nrows = static_cast<std::uint64_t>(data[1]);
  const std::uint64_t avail = n >= 2 + ns ? static_cast<std::uint64_t>(n - 2 - ns) : 0;
  if (n < 2 + ns || nrows > avail / 7 || avail != 7 * nrows) {
    throw std::invalid_argument(std::string(who) + "buffer size " + std::to_string(n) +
                                " does not match " + std::to_string(ns) + " sites and " +
                                std::to_string(nrows) + " rows");
  }
  const std::int64_t* rows = data + 2 + ns;
  for (std::uint64_t r = 0; r < nrows; ++r) {
    const std::int64_t* row = rows + 7 * r;
    if (row[0] < 0 || static_cast<std::uint64_t>(row[0]) >= lags_.size()) {
      throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) + ": lag index " +
                                  std::to_string(row[0]) + " out of range");
    }
    for (int c = 1; c <= 2; ++c) {
      if (row[c] < 0 || static_cast<std::uint64_t>(row[c]) >= ns) {
        throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) +
                                    ": site index " + std::to_string(row[c]) + " out of range");
      }
    }
    for (int c = 3; c <= 5; ++c) {
      if (!fits_int32(row[c])) {
        throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) + ": shift " +
                                    std::to_string(row[c]) + " out of range");
      }
    }
  }
  // Valid: apply.
  for (std::size_t s = 0; s < ns; ++s) occupancy_[s] += to_u64(data[2 + s]);
  for (std::uint64_t r = 0; r < nrows; ++r) {
    const std::int64_t* row = rows + 7 * r;
    const Image shift{static_cast<std::int32_t>(row[3]), static_cast<std::int32_t>(row[4]),
                      static_cast<std::int32_t>(row[5])};
    tables_[static_cast<std::size_t>(row[0])].add(
        static_cast<SiteIndex>(row[1]), static_cast<SiteIndex>(row[2]), shift, to_u64(row[6]));
  }
}

void TransitionCounter::clear_counts() {
  settle();  // what was counted so far is dropped; open rates count from here on
  for (CountTable& t : tables_) t.clear();
  std::fill(disp_sum_.begin(), disp_sum_.end(), Eigen::Vector3d::Zero());
  std::fill(disp_sq_.begin(), disp_sq_.end(), Eigen::Matrix3d::Zero());
  std::fill(occupancy_.begin(), occupancy_.end(), 0);
}

std::vector<std::int64_t> TransitionCounter::pack_clock() const {
  std::vector<std::int64_t> out;
  out.reserve(3 + origins_.size() + recent_.size());
  out.push_back(current_);
  out.push_back(have_current_ ? 1 : 0);
  out.push_back(to_i64(n_samples_));
  for (std::uint64_t o : origins_) out.push_back(to_i64(o));
  if (history_.mode == HistoryConfig::Mode::MultiTau) {
    out.push_back(previous_);
    for (const auto& ring : level_ring_) out.insert(out.end(), ring.begin(), ring.end());
    return out;
  }
  for (std::int64_t r : recent_) out.push_back(r);
  // the end of the window after the last sampling gap: quiet samples resume exactly where an
  // uninterrupted count would resume them
  out.push_back(dense_until_);
  return out;
}

void TransitionCounter::unpack_clock(const std::int64_t* data, std::size_t n) {
  const char* who = "TransitionCounter::unpack_clock: ";
  const bool mt = history_.mode == HistoryConfig::Mode::MultiTau;
  const std::size_t want =
      3 + origins_.size() +
      (mt ? 1 + levels_.size() * static_cast<std::size_t>(history_.m) : recent_.size());
  if (lags_.empty()) throw std::invalid_argument(std::string(who) + "counter has no lags");
  const bool with_dense = !mt && n == want + 1;
  if (data == nullptr || (n != want && !with_dense)) {
    throw std::invalid_argument(std::string(who) + "expected " + std::to_string(want) +
                                " values (for " + std::to_string(lags_.size()) + " lags, longest " +
                                std::to_string(max_lag_samples()) + " samples), got " +
                                std::to_string(n));
  }
  const std::int64_t current = data[0];
  const std::int64_t have = data[1];
  if (have != 0 && have != 1) {
    throw std::invalid_argument(std::string(who) + "invalid have_current flag " +
                                std::to_string(have));
  }
  if (have == 1 ? current < 0 : current != -1) {
    throw std::invalid_argument(std::string(who) + "invalid current sample " +
                                std::to_string(current));
  }
  if (mt) {
    const std::int64_t prev = data[3 + origins_.size()];
    if (prev < -1 || (have == 1 && prev >= current) || (have == 0 && prev != -1))
      throw std::invalid_argument(std::string(who) + "invalid previous sample " +
                                  std::to_string(prev));
    const std::int64_t* rings = data + 4 + origins_.size();
    const std::int64_t m = history_.m;
    for (std::size_t li = 0; li < levels_.size(); ++li) {
      const int k = levels_[li];
      for (std::int64_t sl = 0; sl < m; ++sl) {
        const std::int64_t v = rings[static_cast<std::int64_t>(li) * m + sl];
        if (v == -1) continue;
        if (v < 0 || v % (std::int64_t{1} << k) != 0 || (v >> k) % m != sl || !have || v > current)
          throw std::invalid_argument(std::string(who) + "invalid sample " + std::to_string(v) +
                                      " in slot " + std::to_string(sl) + " of level " +
                                      std::to_string(k));
      }
    }
    current_ = current;
    have_current_ = (have == 1);
    n_samples_ = to_u64(data[2]);
    for (std::size_t i = 0; i < origins_.size(); ++i) origins_[i] = to_u64(data[3 + i]);
    previous_ = prev;
    for (std::size_t li = 0; li < levels_.size(); ++li)
      level_ring_[li].assign(rings + static_cast<std::int64_t>(li) * m,
                             rings + static_cast<std::int64_t>(li + 1) * m);
    return;
  }
  const std::int64_t kmax = max_lag_samples();
  const std::int64_t* ring = data + 3 + origins_.size();
  for (std::int64_t i = 0; i < kmax; ++i) {
    const std::int64_t v = ring[i];
    if (v == -1) continue;
    if (v < 0 || v % kmax != i || !have || v > current) {
      throw std::invalid_argument(std::string(who) + "invalid sample " + std::to_string(v) +
                                  " in slot " + std::to_string(i) + " of the recent-sample ring");
    }
  }
  if (have == 1 && ring[current % kmax] != current) {
    throw std::invalid_argument(std::string(who) + "the current sample " + std::to_string(current) +
                                " is missing from the ring");
  }
  current_ = current;
  have_current_ = (have == 1);
  n_samples_ = to_u64(data[2]);
  for (std::size_t i = 0; i < origins_.size(); ++i) origins_[i] = to_u64(data[3 + i]);
  settle();
  recent_.assign(ring, ring + kmax);
  // the previous sample is not stored: atoms recorded at the restored sample continue. Without
  // the stored end of the last gap's window, every atom re-evaluates its pairs for one window
  // (the ring may hold sampling gaps).
  prev_sample_ = -1;
  dense_until_ = have_current_ ? current + kmax + 1 : -1;
  if (with_dense) {
    const std::int64_t d = data[want];
    if (d < -1 || (have == 0 && d != -1))
      throw std::invalid_argument(std::string(who) + "invalid end of the dense window " +
                                  std::to_string(d));
    dense_until_ = d;
  }
}

}  // namespace ionmsm
