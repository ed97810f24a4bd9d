// Per-atom event-driven counting for `history full` (record layout in counting_full.hpp,
// derivation in docs/theory.md, "Event-driven counting"; rates in counting_full_rates.cpp).
//
// For lag l the pair of an atom at sample k is (entry(k - l), entry(k)). It changes only at a
// change point c of the atom's entries (c = k or c = k - l): the atom does work only at its
// change points and when an earlier change point reaches one of its lags.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "ionmsm/counting_full.hpp"

namespace ionmsm {

namespace {

using FR = FullRecord;
constexpr double kNever = 4611686018427387904.0;  // 2^62: no event scheduled
const char* const kAddWho = "TransitionCounter::add_atom_sample: ";

}  // namespace

FullHistoryCounter::Tail FullHistoryCounter::tail_of(const double* record) const {
  // const_cast: callers that hold a const record only read the parts
  double* slots = const_cast<double*>(record) + FR::kHeader;
  double* n_changes = slots + max_lag_samples();
  return Tail{slots, n_changes, n_changes + 1, n_changes + 1 + FR::kChanges};
}

bool FullHistoryCounter::decode(double v, std::int64_t& u) const {
  if (!(v >= 0.0 && v < limit_)) return false;
  u = static_cast<std::int64_t>(v);
  if (static_cast<double>(u) != v) return false;
  return (u & ((std::int64_t{1} << sbits_) - 1)) < static_cast<std::int64_t>(occupancy_.size());
}

FullHistoryCounter::FullHistoryCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples)
    : HistoryCounter(nsites, std::move(lag_samples)) {
  if (lags_.back() > std::numeric_limits<int>::max() / 2) {
    throw std::invalid_argument("TransitionCounter: the longest lag (" +
                                std::to_string(lags_.back()) +
                                " samples) is too long for a per-atom history");
  }
  lag_level_.assign(lags_.size(), 0);
  // entries site + S (e_x + R (e_y + R e_z)) with S = 2^sbits >= nsites, R = 2^rbits
  int sb = 0;
  while ((std::size_t{1} << sb) < nsites) ++sb;
  sbits_ = sb;
  rbits_ = std::min(16, (53 - sb) / 3);  // sb <= 31 -> rbits >= 7
  radix_ = std::int64_t{1} << rbits_;
  limit_ = std::ldexp(1.0, sbits_ + 3 * rbits_);
  recent_.assign(static_cast<std::size_t>(lags_.back()), -1);
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

std::unique_ptr<HistoryCounter> FullHistoryCounter::clone() const {
  return std::make_unique<FullHistoryCounter>(*this);
}

int FullHistoryCounter::doubles_per_atom() const {
  return FR::kHeader + static_cast<int>(max_lag_samples()) + 1 + FR::kChanges +
         static_cast<int>(lags_.size());
}

void FullHistoryCounter::clear_history(double* record) const {
  record[FR::kLastSeen] = -1.0;  // no sample yet
  for (int d = 0; d < 3; ++d) record[FR::kBase + d] = 0.0;
  record[FR::kTag] = FR::kTagValue;
  record[FR::kCurrent] = -1.0;  // not being recorded
  record[FR::kNextEvent] = 0.0;
  record[FR::kLastWritten] = -1.0;  // no explicit entry
  const Tail parts = tail_of(record);
  std::fill(parts.slots, parts.n_changes, -1.0);
  *parts.n_changes = 0.0;  // no change points
  std::fill(parts.changes, parts.from + lags_.size(), -1.0);
}

// ------------------------------------------------------------------------------ clock

void FullHistoryCounter::advance_clock(std::int64_t sample_index) {
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

// [recent ring, dense_until]: the end of the window after the last sampling gap, so that quiet
// samples resume exactly where an uninterrupted count would resume them
void FullHistoryCounter::pack_clock_tail(std::vector<std::int64_t>& out) const {
  out.insert(out.end(), recent_.begin(), recent_.end());
  out.push_back(dense_until_);
}

std::size_t FullHistoryCounter::clock_tail_size() const { return recent_.size(); }

// older restart files hold the ring without dense_until
bool FullHistoryCounter::clock_tail_readable(std::size_t n) const {
  return n == recent_.size() || n == recent_.size() + 1;
}

void FullHistoryCounter::unpack_clock_tail(const std::int64_t* ring, std::size_t n,
                                           std::int64_t current, bool have) {
  const char* who = "TransitionCounter::unpack_clock: ";
  const std::int64_t kmax = max_lag_samples();
  for (std::int64_t i = 0; i < kmax; ++i) {
    const std::int64_t v = ring[i];
    if (v == -1) continue;
    if (v < 0 || v % kmax != i || !have || v > current) {
      throw std::invalid_argument(std::string(who) + "invalid sample " + std::to_string(v) +
                                  " in slot " + std::to_string(i) + " of the recent-sample ring");
    }
  }
  if (have && ring[current % kmax] != current) {
    throw std::invalid_argument(std::string(who) + "the current sample " + std::to_string(current) +
                                " is missing from the ring");
  }
  settle();
  recent_.assign(ring, ring + kmax);
  // the previous sample is not stored: atoms recorded at the restored sample continue. Without
  // the stored end of the last gap's window, every atom re-evaluates its pairs for one window
  // (the ring may hold sampling gaps).
  prev_sample_ = -1;
  dense_until_ = have ? current + kmax + 1 : -1;
  if (n == recent_.size() + 1) {
    const std::int64_t d = ring[kmax];
    if (d < -1 || (!have && d != -1))
      throw std::invalid_argument(std::string(who) + "invalid end of the dense window " +
                                  std::to_string(d));
    dense_until_ = d;
  }
}

// ------------------------------------------------------------------------------ per atom


void FullHistoryCounter::check_header(const double* record) const {
  const char* who = "TransitionCounter: corrupt history record (";
  if (record[FR::kTag] != FR::kTagValue)
    throw std::invalid_argument(std::string(who) + "not initialised by clear_history)");
  const double last = record[FR::kLastSeen], lw = record[FR::kLastWritten];
  const double cur = record[FR::kCurrent];
  if (!(last == std::floor(last) && last >= -1.0 && last <= static_cast<double>(current_)))
    throw std::invalid_argument(std::string(who) + "last sample " + std::to_string(last) + ")");
  if (!(lw == std::floor(lw) && lw >= -1.0 && lw <= last))
    throw std::invalid_argument(std::string(who) + "last written sample " + std::to_string(lw) +
                                ")");
  std::int64_t u = 0;
  if (cur != -1.0 && !decode(cur, u))
    throw std::invalid_argument(std::string(who) + "current entry " + std::to_string(cur) + ")");
  if (cur != -1.0 && last < 0.0)
    throw std::invalid_argument(std::string(who) + "current entry without a sample)");
  for (int d = 0; d < 3; ++d) {
    const double b = record[FR::kBase + d];
    if (!(std::abs(b) <= 1.0e9 && b == std::floor(b)))
      throw std::invalid_argument(std::string(who) + "base image " + std::to_string(b) + ")");
  }
  const double n = *tail_of(record).n_changes;
  if (!(n == std::floor(n) && n >= 0.0 && n < kNever))
    throw std::invalid_argument(std::string(who) + "change count " + std::to_string(n) + ")");
}

void FullHistoryCounter::add(double* record, const SiteImage& now) {
  const std::int64_t t = current_;
  // Prefetch the header of an atom a few records ahead when records come at a constant stride
  // (LAMMPS' per-atom array, the benchmark); prefetching never faults, whatever the address.
  {
    const std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(record);
    const std::intptr_t stride = static_cast<std::intptr_t>(addr - last_record_);
    if (stride == last_stride_ && stride != 0) {
      const std::uintptr_t ahead = addr + static_cast<std::uintptr_t>(4 * stride);
      __builtin_prefetch(reinterpret_cast<const void*>(ahead), 1, 3);
      __builtin_prefetch(reinterpret_cast<const void*>(ahead + (FR::kHeader - 1) * sizeof(double)),
                         1, 3);
    }
    last_stride_ = stride;
    last_record_ = addr;
  }
  // Fast path: recorded at the previous sample, same entry, no lag pair due to change.
  const double cur = record[FR::kCurrent];
  if (cur >= 0.0 && t > dense_until_ && static_cast<double>(t) < record[FR::kNextEvent] &&
      record[FR::kTag] == FR::kTagValue &&
      record[FR::kLastSeen] == static_cast<double>(prev_sample_)) {
    const std::int64_t half = radix_ / 2;
    const int sb = sbits_, rb = rbits_;
    std::int64_t v = now.site;
    bool fits = true;
    for (int d = 0; d < 3; ++d) {
      const std::int64_t e = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) -
                             static_cast<std::int64_t>(record[FR::kBase + d]) + half;
      fits = fits && e >= 0 && e < radix_;
      v += e << (sb + d * rb);
    }
    if (fits && static_cast<double>(v) == cur) {
      record[FR::kLastSeen] = static_cast<double>(t);
      return;
    }
  }
  event(record, now);
}

std::int64_t FullHistoryCounter::quiet_until(const double* record) const {
  if (record[FR::kTag] != FR::kTagValue || !(record[FR::kCurrent] >= 0.0) ||
      record[FR::kLastSeen] != static_cast<double>(current_))
    return -1;
  // the fast path of add_full skips exactly the samples before next_event
  return static_cast<std::int64_t>(record[FR::kNextEvent]);
}

void FullHistoryCounter::mark_quiet(double* record, std::int64_t last_sample) const {
  const char* who = "TransitionCounter::mark_quiet: ";
  // Only the header fields this reads: the value written lies between two the record already
  // holds, so a valid record stays valid, and the next add_atom_sample or drop_atom validates
  // the whole record as always (mark_quiet runs once per event and must not cost another
  // cache line of the record).
  if (record[FR::kTag] != FR::kTagValue)
    throw std::invalid_argument(std::string(who) + "corrupt history record (not initialised "
                                "by clear_history)");
  if (!(record[FR::kCurrent] >= 0.0))
    throw std::invalid_argument(std::string(who) + "the atom is not being recorded");
  const double last = record[FR::kLastSeen];
  if (static_cast<double>(last_sample) < last || last_sample > current_ ||
      static_cast<double>(last_sample) >= record[FR::kNextEvent])
    throw std::invalid_argument(std::string(who) + "sample " + std::to_string(last_sample) +
                                " is not within the atom's quiet samples (last recorded " +
                                std::to_string(static_cast<std::int64_t>(last)) +
                                ", next event " +
                                std::to_string(static_cast<std::int64_t>(
                                    record[FR::kNextEvent])) + ")");
  record[FR::kLastSeen] = static_cast<double>(last_sample);
}

// One event of one atom: its entry changes, or a change point reaches one of its lags. Every
// step before commit_entries() only validates and decodes (a corrupt record or an atom that
// moved too far throws without side effects).
void FullHistoryCounter::event(double* record, const SiteImage& now) {
  Event e = start_event(record, now);
  mark_lags_to_evaluate(e);
  decode_old_pairs(e);
  std::vector<Live> live;
  collect_window(e, live);
  if (!e.fits) choose_base(e, live, now);
  commit_entries(e, live, now);
  move_pair_rates(e, now);
  finish_event(e);
}

FullHistoryCounter::Event FullHistoryCounter::start_event(double* record,
                                                          const SiteImage& now) {
  check_header(record);
  Event e;
  e.record = record;
  e.parts = tail_of(record);
  e.t = current_;
  e.kmax = max_lag_samples();
  const std::int64_t last = static_cast<std::int64_t>(record[FR::kLastSeen]);
  if (last >= e.t)
    throw std::invalid_argument(std::string(kAddWho) + "corrupt history record (last sample " +
                                std::to_string(last) + " is not before sample " +
                                std::to_string(e.t) + ")");
  const double cur_old = record[FR::kCurrent];
  e.active = cur_old >= 0.0;
  if (e.active && last != prev_sample_)
    throw std::invalid_argument(std::string(kAddWho) + "the atom was last recorded at sample " +
                                std::to_string(last) + " and missed sample " +
                                std::to_string(prev_sample_) +
                                " without drop_atom(); its counts would be wrong");
  e.lw = static_cast<std::int64_t>(record[FR::kLastWritten]);
  e.fillv = e.active ? cur_old : -1.0;
  e.ucur = 0;
  if (e.active) decode(cur_old, e.ucur);  // checked by check_header
  const std::int64_t half = radix_ / 2;
  e.fits = true;
  for (int d = 0; d < 3; ++d) {
    e.base[d] = static_cast<std::int64_t>(record[FR::kBase + d]);
    e.nb[d] = e.base[d];
    e.ne[d] = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) - e.base[d] + half;
    e.fits = e.fits && e.ne[d] >= 0 && e.ne[d] < radix_;
  }
  // The entry changed (hop, or the atom starts being recorded)? Then every lag pair may
  // change; otherwise only lags whose origin is a change point (the event that brought us
  // here), or every lag when such points may have been forgotten or origins were skipped.
  e.changed = !e.active || site_of(e.ucur) != now.site;
  for (int d = 0; d < 3 && !e.changed; ++d)
    e.changed = offset_of(e.ucur, d) - half + e.base[d] != now.image[static_cast<std::size_t>(d)];
  const std::size_t nl = lags_.size();
  if (scratch_use_.size() < nl) scratch_use_.resize(nl);
  if (scratch_u_.size() < nl) scratch_u_.resize(nl);
  e.eval = scratch_use_.data();
  e.uold = scratch_u_.data();
  return e;
}

// eval[i]: the pair of lag i may change at this sample
void FullHistoryCounter::mark_lags_to_evaluate(Event& e) const {
  const bool all = e.changed || e.t <= dense_until_;
  const double* chg = e.parts.changes;
  const auto n = static_cast<std::int64_t>(*e.parts.n_changes);
  const std::int64_t kept = std::min<std::int64_t>(n, FR::kChanges);
  const std::int64_t oldest =
      kept > 0 ? static_cast<std::int64_t>(chg[(n - kept) % FR::kChanges]) : 0;
  for (std::size_t i = 0; i < lags_.size(); ++i)
    e.eval[i] = (all || (n > FR::kChanges && e.t - lags_[i] < oldest)) ? 1 : 0;
  for (std::int64_t q = n - kept; q < n && !all; ++q) {  // lags equal to t - c
    const std::int64_t d = e.t - static_cast<std::int64_t>(chg[q % FR::kChanges]);
    if (d >= 1 && d <= e.kmax && lag_index_[static_cast<std::size_t>(d)] >= 0)
      e.eval[static_cast<std::size_t>(lag_index_[static_cast<std::size_t>(d)])] = 1;
  }
}

// uold[i]: the from entry lag i's current pair was counted with (-1: none)
void FullHistoryCounter::decode_old_pairs(Event& e) const {
  const double* from = e.parts.from;
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    e.uold[i] = -1;
    if (!e.eval[i] || !e.active || from[i] == -1.0) continue;
    if (!decode(from[i], e.uold[i]))
      throw std::invalid_argument(std::string(kAddWho) + "corrupt history record (from entry " +
                                  std::to_string(from[i]) + ")");
  }
}

// Without a rebase: validates the entries the lags read. With one: the live entries of the
// window (sampled indices in [t - kmax, t - 1] with an entry), decoded.
void FullHistoryCounter::collect_window(const Event& e, std::vector<Live>& live) const {
  auto corrupt = [](double v, std::int64_t j) {
    return std::invalid_argument(std::string(kAddWho) + "corrupt history record (entry " +
                                 std::to_string(v) + " at sample " + std::to_string(j) + ")");
  };
  if (e.fits) {
    for (std::size_t i = 0; i < lags_.size(); ++i) {
      if (!e.eval[i] || !origin_ok_[i]) continue;
      const double v = e.entry_at(e.t - lags_[i]);
      std::int64_t u = 0;
      if (v != -1.0 && !decode(v, u)) throw corrupt(v, e.t - lags_[i]);
    }
    return;
  }
  const std::int64_t half = radix_ / 2;
  for (std::int64_t j = std::max<std::int64_t>(0, e.t - e.kmax); j < e.t; ++j) {
    if (!sampled_in_window(j)) continue;
    const double v = e.entry_at(j);
    if (v == -1.0) continue;
    std::int64_t u = 0;
    if (!decode(v, u)) throw corrupt(v, j);
    Live l{j, site_of(u), {0, 0, 0}};
    for (int d = 0; d < 3; ++d) l.img[d] = offset_of(u, d) - half + e.base[d];
    live.push_back(l);
  }
}

// sampled(j) for j in [t - kmax, t - 1]: the global ring slot of t - kmax now holds t
bool FullHistoryCounter::sampled_in_window(std::int64_t j) const {
  const std::int64_t kmax = max_lag_samples();
  if (j < 0) return false;
  if (j == current_ - kmax) return origin_ok_.back() != 0;
  return recent_[static_cast<std::size_t>(j % kmax)] == j;
}

// The new base image when the current image does not fit the old one: the current image, or
// (if a live entry does not fit that) the lowest image of the window + R/2.
void FullHistoryCounter::choose_base(Event& e, const std::vector<Live>& live,
                                     const SiteImage& now) const {
  const std::int64_t half = radix_ / 2;
  for (int d = 0; d < 3; ++d) {
    const std::int64_t n = now.image[static_cast<std::size_t>(d)];
    std::int64_t lo = n, hi = n;
    for (const Live& l : live) {
      lo = std::min(lo, l.img[d]);
      hi = std::max(hi, l.img[d]);
    }
    if (hi - lo > radix_ - 1)
      throw std::invalid_argument(
          std::string(kAddWho) + "an atom moved over " + std::to_string(hi - lo) +
          " periodic images along cell axis " + std::to_string(d) +
          " within its history window (" + std::to_string(e.kmax) + " samples); at most " +
          std::to_string(radix_ - 1) + " can be stored with " +
          std::to_string(occupancy_.size()) + " sites");
    e.nb[d] = (lo - n >= -half && hi - n <= radix_ - 1 - half) ? n : lo + half;
  }
}

// Commit: a changed entry makes the implicit entries explicit (fill), then rebase. (A rebase
// implies a changed image, so an unchanged entry keeps its implicit ones.)
void FullHistoryCounter::commit_entries(Event& e, const std::vector<Live>& live,
                                        const SiteImage& now) {
  double* slots = e.parts.slots;
  const std::int64_t t = e.t, kmax = e.kmax;
  if (e.changed) {  // samples max(lw + 1, t - kmax, 0) .. t - 1, as at most two runs of the ring
    const std::int64_t j0 = std::max({e.lw + 1, t - kmax, std::int64_t{0}});
    if (j0 < t) {
      const std::int64_t a = j0 % kmax, len = t - j0;
      const std::int64_t first = std::min(len, kmax - a);
      std::fill(slots + a, slots + a + first, e.fillv);
      std::fill(slots, slots + (len - first), e.fillv);
    }
  }
  const std::int64_t half = radix_ / 2;
  const int sb = sbits_, rb = rbits_;
  if (!e.fits) {
    for (const Live& l : live) {
      std::int64_t v = l.site;
      for (int d = 0; d < 3; ++d) v += (l.img[d] - e.nb[d] + half) << (sb + d * rb);
      slots[l.j % kmax] = static_cast<double>(v);
    }
    for (int d = 0; d < 3; ++d) {
      e.record[FR::kBase + d] = static_cast<double>(e.nb[d]);
      e.ne[d] = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) - e.nb[d] + half;
    }
  }
  e.vnow = now.site + (e.ne[0] << sb) + (e.ne[1] << (sb + rb)) + (e.ne[2] << (sb + 2 * rb));
}

// Pairs whose from entry or to entry changed: move the atom between rates. The change takes
// effect at this sample (clock before its tick). Keys compare decoded: shifts do not depend on
// the base, so old (possibly pre-rebase) and new entries mix safely.
void FullHistoryCounter::move_pair_rates(const Event& e, const SiteImage& now) {
  double* from = e.parts.from;
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (!e.eval[i]) continue;
    const std::int64_t j = e.t - lags_[i];
    std::int64_t unew = -1;
    if (origin_ok_[i]) {
      const double v = e.changed ? e.parts.slots[j % e.kmax] : e.entry_at(j);
      if (v != -1.0) unew = static_cast<std::int64_t>(v);  // live: validated above
    }
    const std::int64_t uo = e.uold[i];
    bool same = uo < 0 && unew < 0;
    if (uo >= 0 && unew >= 0 && site_of(uo) == site_of(unew) && site_of(e.ucur) == now.site) {
      same = true;
      for (int d = 0; d < 3 && same; ++d)
        same = offset_of(e.ucur, d) - offset_of(uo, d) == e.ne[d] - offset_of(unew, d);
    }
    if (!same) {
      if (uo >= 0) pair_rate(i, uo, e.ucur, -1, clk_prev_[i]);
      if (unew >= 0) pair_rate(i, unew, e.vnow, +1, clk_prev_[i]);
    }
    from[i] = static_cast<double>(unew);
  }
  if (!e.active) {
    occupancy_rate(now.site, +1, sclk_prev_);
  } else if (site_of(e.ucur) != now.site) {
    occupancy_rate(site_of(e.ucur), -1, sclk_prev_);
    occupancy_rate(now.site, +1, sclk_prev_);
  }
}

// A changed entry is a change point and an explicit entry; the header moves to this sample.
void FullHistoryCounter::finish_event(Event& e) {
  double* record = e.record;
  if (e.changed) {
    const auto n = static_cast<std::int64_t>(*e.parts.n_changes);
    e.parts.changes[n % FR::kChanges] = static_cast<double>(e.t);
    *e.parts.n_changes = static_cast<double>(n + 1);
    e.parts.slots[e.t % e.kmax] = static_cast<double>(e.vnow);
    record[FR::kLastWritten] = static_cast<double>(e.t);
  }
  record[FR::kLastSeen] = static_cast<double>(e.t);
  record[FR::kCurrent] = static_cast<double>(e.vnow);
  record[FR::kNextEvent] = static_cast<double>(next_event(record));
}

// The first sample after current_ at which a lag pair of this (recorded) atom changes without
// a change of its entry: when a change point c reaches lag l (sample c + l).
std::int64_t FullHistoryCounter::next_event(const double* record) const {
  const std::int64_t t = current_;
  if (t + 1 <= dense_until_) return t + 1;
  const Tail parts = tail_of(record);
  const double* chg = parts.changes;
  const auto n = static_cast<std::int64_t>(*parts.n_changes);
  const std::int64_t kept = std::min<std::int64_t>(n, FR::kChanges);
  if (kept == 0) return static_cast<std::int64_t>(kNever);
  const std::int64_t oldest = static_cast<std::int64_t>(chg[(n - kept) % FR::kChanges]);
  // change points older than `oldest` were overwritten: one may lie in (o, oldest) for the
  // origin o of the longest lag
  if (n > FR::kChanges && oldest - 1 > t - lags_.back()) return t + 1;
  std::int64_t best = static_cast<std::int64_t>(kNever);
  // origins t - l increase as the lag decreases; points are stored in increasing order: for
  // each lag the first change point after its origin, in one walk
  std::int64_t q = n - kept;
  for (std::size_t i = lags_.size(); i-- > 0;) {
    const std::int64_t o = t - lags_[i];
    while (q < n && static_cast<std::int64_t>(chg[q % FR::kChanges]) <= o) ++q;
    if (q == n) break;
    best = std::min(best, static_cast<std::int64_t>(chg[q % FR::kChanges]) + lags_[i]);
  }
  return best;
}

void FullHistoryCounter::drop_atom(double* record) {
  // not being recorded (atoms outside the group, every sample): nothing to do
  if (record[FR::kCurrent] < 0.0 && record[FR::kTag] == FR::kTagValue) return;
  check_header(record);
  const double cur = record[FR::kCurrent];
  if (cur < 0.0) return;
  const std::int64_t last = static_cast<std::int64_t>(record[FR::kLastSeen]);
  // recorded at the current sample: its pairs end after it; at the previous one: before it
  bool post;
  if (have_current_ && last == current_)
    post = true;
  else if (last == prev_sample_)
    post = false;
  else
    throw std::invalid_argument("TransitionCounter::drop_atom: the atom was last recorded at "
                                "sample " + std::to_string(last) + " and missed sample " +
                                std::to_string(prev_sample_) + " without drop_atom()");
  const std::int64_t kmax = max_lag_samples();
  const Tail parts = tail_of(record);
  double* slots = parts.slots;
  double* n_changes = parts.n_changes;
  double* chg = parts.changes;
  double* from = parts.from;
  std::int64_t ucur = 0;
  decode(cur, ucur);
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    std::int64_t u = 0;
    if (from[i] != -1.0 && !decode(from[i], u))
      throw std::invalid_argument("TransitionCounter::drop_atom: corrupt history record (from "
                                  "entry " + std::to_string(from[i]) + ")");
  }
  const std::int64_t lw = static_cast<std::int64_t>(record[FR::kLastWritten]);
  for (std::int64_t j = std::max(lw + 1, last - kmax + 1); j <= last; ++j)
    if (j >= 0) slots[j % kmax] = cur;
  record[FR::kLastWritten] = static_cast<double>(last);
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (from[i] == -1.0) continue;
    pair_rate(i, static_cast<std::int64_t>(from[i]), ucur, -1,
                   post ? clk_[i] : clk_prev_[i]);
    from[i] = -1.0;
  }
  occupancy_rate(ucur & ((std::int64_t{1} << sbits_) - 1), -1, post ? sclk_ : sclk_prev_);
  const auto n = static_cast<std::int64_t>(*n_changes);
  chg[n % FR::kChanges] = static_cast<double>(last + 1);
  *n_changes = static_cast<double>(n + 1);
  record[FR::kCurrent] = -1.0;
  record[FR::kNextEvent] = kNever;
}

void FullHistoryCounter::restore_atom(const double* record) {
  check_header(record);
  const double cur = record[FR::kCurrent];
  if (cur < 0.0) return;
  const double* from = tail_of(record).from;
  std::int64_t ucur = 0;
  decode(cur, ucur);
  std::vector<std::int64_t> u(lags_.size(), -1);
  for (std::size_t i = 0; i < lags_.size(); ++i)
    if (from[i] != -1.0 && !decode(from[i], u[i]))
      throw std::invalid_argument("TransitionCounter::restore_atom: corrupt history record (from "
                                  "entry " + std::to_string(from[i]) + ")");
  // the atom holds these pairs from the next sample on
  for (std::size_t i = 0; i < lags_.size(); ++i)
    if (u[i] >= 0) pair_rate(i, u[i], ucur, +1, clk_[i]);
  occupancy_rate(ucur & ((std::int64_t{1} << sbits_) - 1), +1, sclk_);
}

}  // namespace ionmsm
