// Event-driven counting for `history full` (semantics and record layout in counting.hpp;
// derivation in docs/theory.md, "Event-driven counting").
//
// For lag l the pair of an atom at sample k is (entry(k - l), entry(k)). It changes only at a
// change point c of the atom's entries (c = k or c = k - l), so the counter keeps per lag and
// pair the number of atoms holding it (a rate) and integrates rates against a per-lag clock
// that ticks once per sampled origin. Rate changes and lazy integration obey one rule: an
// entry {n, rate, stamp} holds the integral up to clock value `stamp`; an atom that joins
// (delta = +1) or leaves (delta = -1) the pair from clock value c adds delta * (stamp - c)
// after the entry has been brought up to c. Stamps may be ahead of c (a read in the middle of
// a sample), so the differences are signed; counts wrap modulo 2^64 like uint64 sums do.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ionmsm/counting.hpp"

namespace ionmsm {

namespace {

constexpr double kNever = 4611686018427387904.0;  // 2^62: no event scheduled

std::int64_t sdiff(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a - b);  // modular difference, as a signed value
}

}  // namespace

bool TransitionCounter::full_decode(double v, std::int64_t& u) const {
  if (!(v >= 0.0 && v < full_limit_)) return false;
  u = static_cast<std::int64_t>(v);
  if (static_cast<double>(u) != v) return false;
  return (u & ((std::int64_t{1} << full_sbits_) - 1)) <
         static_cast<std::int64_t>(occupancy_.size());
}

void TransitionCounter::set_cell(const Eigen::Matrix3d& h) {
  if (h != cell_ && history_.mode == HistoryConfig::Mode::Full) {
    // samples before the current one keep the old cell
    settle_to(sclk_prev_, clk_prev_);
  }
  cell_ = h;
}

// ------------------------------------------------------------------------- rates and settling

void TransitionCounter::full_pair_rate(std::size_t lag, std::int64_t uf, std::int64_t ut,
                                       std::int64_t delta, std::uint64_t clock) {
  unsettled_ = true;
  const int sb = full_sbits_, rb = full_rbits_;
  const std::int64_t smask = (std::int64_t{1} << sb) - 1, rmask = radix_ - 1;
  const auto fs = static_cast<SiteIndex>(uf & smask), ts = static_cast<SiteIndex>(ut & smask);
  Image sh;
  bool stay = fs == ts;
  for (int d = 0; d < 3; ++d) {
    sh[static_cast<std::size_t>(d)] = static_cast<std::int32_t>(((ut >> (sb + d * rb)) & rmask) -
                                                                ((uf >> (sb + d * rb)) & rmask));
    stay = stay && sh[static_cast<std::size_t>(d)] == 0;
  }
  LagRates& lr = rates_[lag];
  std::int64_t* rate;
  std::uint64_t* stamp;
  std::uint64_t key = 0;
  if (stay) {
    rate = &lr.stay_rate[static_cast<std::size_t>(fs)];
    stamp = &lr.stay_stamp[static_cast<std::size_t>(fs)];
  } else if (CountTable::pack(fs, ts, sh, key)) {
    if (2 * (lr.used + 1) > lr.moving.size()) {
      std::vector<RateSlot> old;
      old.swap(lr.moving);
      const std::size_t cap = old.empty() ? 64 : 2 * old.size();
      lr.moving.assign(cap, RateSlot{~std::uint64_t{0}, 0, 0, 0});
      int bits = 0;
      while ((std::size_t{1} << bits) < cap) ++bits;
      lr.shift = 64 - bits;
      for (const RateSlot& e : old) {
        if (e.key == ~std::uint64_t{0}) continue;
        std::size_t h = static_cast<std::size_t>((e.key * 0x9E3779B97F4A7C15ull) >> lr.shift);
        while (lr.moving[h].key != ~std::uint64_t{0}) h = (h + 1) & (cap - 1);
        lr.moving[h] = e;
      }
    }
    const std::size_t mask = lr.moving.size() - 1;
    std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> lr.shift);
    while (lr.moving[h].key != key && lr.moving[h].key != ~std::uint64_t{0}) h = (h + 1) & mask;
    if (lr.moving[h].key != key) {
      lr.moving[h] = RateSlot{key, 0, clock, 0};
      ++lr.used;
    }
    // one hash lookup: the count stays in the slot until the next settle
    RateSlot& e = lr.moving[h];
    if (sdiff(clock, e.stamp) > 0) {
      e.pending += e.rate * sdiff(clock, e.stamp);
      e.stamp = clock;
    }
    e.pending += delta * sdiff(e.stamp, clock);
    e.rate += delta;
    return;
  } else {
    CountKey k;
    k.from = fs;
    k.to = ts;
    k.shift = sh;
    auto it = lr.overflow.find(k);
    if (it == lr.overflow.end()) it = lr.overflow.emplace(k, std::make_pair(std::int64_t{0}, clock)).first;
    rate = &it->second.first;
    stamp = &it->second.second;
  }
  std::int64_t dn = 0;
  if (sdiff(clock, *stamp) > 0) {
    dn += *rate * sdiff(clock, *stamp);
    *stamp = clock;
  }
  dn += delta * sdiff(*stamp, clock);
  *rate += delta;
  if (dn == 0) return;
  const auto n = static_cast<std::uint64_t>(dn);
  if (stay) {
    tables_[lag].add_stay_n(fs, n);
    return;
  }
  tables_[lag].add(fs, ts, sh, n);
  if (has_moments()) add_moment(lag, fs, ts, sh, static_cast<double>(dn));
}

void TransitionCounter::occupancy_rate(std::int64_t site, std::int64_t delta, std::uint64_t clock) {
  unsettled_ = true;
  const auto s = static_cast<std::size_t>(site);
  std::int64_t dn = 0;
  if (sdiff(clock, occ_stamp_[s]) > 0) {
    dn += occ_rate_[s] * sdiff(clock, occ_stamp_[s]);
    occ_stamp_[s] = clock;
  }
  dn += delta * sdiff(occ_stamp_[s], clock);
  occ_rate_[s] += delta;
  occupancy_[s] += static_cast<std::uint64_t>(dn);
}

void TransitionCounter::settle_to(std::uint64_t sample_clock,
                                  const std::vector<std::uint64_t>& lag_clock) const {
  if (rates_.empty()) return;
  const bool moments = has_moments();
  for (std::size_t i = 0; i < rates_.size(); ++i) {
    LagRates& lr = rates_[i];
    const std::uint64_t c = lag_clock[i];
    CountTable& t = tables_[i];
    for (std::size_t s = 0; s < lr.stay_rate.size(); ++s) {
      const std::int64_t r = lr.stay_rate[s];
      if (r == 0) continue;
      const std::int64_t dt = sdiff(c, lr.stay_stamp[s]);
      if (dt <= 0) continue;
      t.add_stay_n(static_cast<SiteIndex>(s), static_cast<std::uint64_t>(r * dt));
      lr.stay_stamp[s] = c;
    }
    for (RateSlot& e : lr.moving) {
      if (e.key == ~std::uint64_t{0}) continue;
      const std::int64_t dt = sdiff(c, e.stamp);
      if (e.rate != 0 && dt > 0) {
        e.pending += e.rate * dt;
        e.stamp = c;
      }
      if (e.pending == 0) continue;
      const std::int64_t dn = e.pending;
      e.pending = 0;
      t.add_packed(e.key, static_cast<std::uint64_t>(dn));
      if (moments) {
        SiteIndex f, to;
        Image sh;
        CountTable::unpack(e.key, f, to, sh);
        add_moment(i, f, to, sh, static_cast<double>(dn));
      }
    }
    for (auto& [k, rs] : lr.overflow) {
      if (rs.first == 0) continue;
      const std::int64_t dt = sdiff(c, rs.second);
      if (dt <= 0) continue;
      const std::int64_t dn = rs.first * dt;
      t.add(k.from, k.to, k.shift, static_cast<std::uint64_t>(dn));
      rs.second = c;
      if (moments) add_moment(i, k.from, k.to, k.shift, static_cast<double>(dn));
    }
  }
  for (std::size_t s = 0; s < occ_rate_.size(); ++s) {
    if (occ_rate_[s] == 0) continue;
    const std::int64_t dt = sdiff(sample_clock, occ_stamp_[s]);
    if (dt <= 0) continue;
    occupancy_[s] += static_cast<std::uint64_t>(occ_rate_[s] * dt);
    occ_stamp_[s] = sample_clock;
  }
}

void TransitionCounter::settle() const {
  if (!unsettled_) return;
  settle_to(sclk_, clk_);
  unsettled_ = false;
}

void TransitionCounter::reset_rates() {
  if (history_.mode != HistoryConfig::Mode::Full) return;
  settle();
  for (LagRates& lr : rates_) {
    std::fill(lr.stay_rate.begin(), lr.stay_rate.end(), 0);
    for (RateSlot& e : lr.moving) e.rate = 0;
    lr.overflow.clear();
  }
  std::fill(occ_rate_.begin(), occ_rate_.end(), 0);
}

// ------------------------------------------------------------------------------ per atom

void TransitionCounter::full_check_header(const double* record) const {
  const char* who = "TransitionCounter: corrupt history record (";
  if (record[4] != kFullTag)
    throw std::invalid_argument(std::string(who) + "not initialised by clear_history)");
  const double last = record[0], lw = record[7], cur = record[5];
  if (!(last == std::floor(last) && last >= -1.0 && last <= static_cast<double>(current_)))
    throw std::invalid_argument(std::string(who) + "last sample " + std::to_string(last) + ")");
  if (!(lw == std::floor(lw) && lw >= -1.0 && lw <= last))
    throw std::invalid_argument(std::string(who) + "last written sample " + std::to_string(lw) +
                                ")");
  std::int64_t u = 0;
  if (cur != -1.0 && !full_decode(cur, u))
    throw std::invalid_argument(std::string(who) + "current entry " + std::to_string(cur) + ")");
  if (cur != -1.0 && last < 0.0)
    throw std::invalid_argument(std::string(who) + "current entry without a sample)");
  for (int d = 1; d <= 3; ++d)
    if (!(std::abs(record[d]) <= 1.0e9 && record[d] == std::floor(record[d])))
      throw std::invalid_argument(std::string(who) + "base image " + std::to_string(record[d]) +
                                  ")");
  const double n = record[kFullHeader + max_lag_samples()];
  if (!(n == std::floor(n) && n >= 0.0 && n < kNever))
    throw std::invalid_argument(std::string(who) + "change count " + std::to_string(n) + ")");
}

void TransitionCounter::add_full(double* record, const SiteImage& now) {
  const std::int64_t t = current_;
  // Prefetch the header of an atom a few records ahead when records come at a constant stride
  // (LAMMPS' per-atom array, the benchmark); prefetching never faults, whatever the address.
  {
    const std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(record);
    const std::intptr_t stride = static_cast<std::intptr_t>(addr - last_record_);
    if (stride == last_stride_ && stride != 0) {
      const std::uintptr_t ahead = addr + static_cast<std::uintptr_t>(4 * stride);
      __builtin_prefetch(reinterpret_cast<const void*>(ahead), 1, 3);
      __builtin_prefetch(reinterpret_cast<const void*>(ahead + (kFullHeader - 1) * sizeof(double)),
                         1, 3);
    }
    last_stride_ = stride;
    last_record_ = addr;
  }
  // Fast path: recorded at the previous sample, same entry, no lag pair due to change.
  const double cur = record[5];
  if (cur >= 0.0 && t > dense_until_ && static_cast<double>(t) < record[6] &&
      record[4] == kFullTag && record[0] == static_cast<double>(prev_sample_)) {
    const std::int64_t half = radix_ / 2;
    const int sb = full_sbits_, rb = full_rbits_;
    std::int64_t v = now.site;
    bool fits = true;
    for (int d = 0; d < 3; ++d) {
      const std::int64_t e = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) -
                             static_cast<std::int64_t>(record[1 + d]) + half;
      fits = fits && e >= 0 && e < radix_;
      v += e << (sb + d * rb);
    }
    if (fits && static_cast<double>(v) == cur) {
      record[0] = static_cast<double>(t);
      return;
    }
  }
  full_event(record, now);
}

std::int64_t TransitionCounter::quiet_until(const double* record) const {
  if (history_.mode != HistoryConfig::Mode::Full) return -1;
  if (record[4] != kFullTag || !(record[5] >= 0.0) || record[0] != static_cast<double>(current_))
    return -1;
  // the fast path of add_full skips exactly the samples before next_event
  return static_cast<std::int64_t>(record[6]);
}

void TransitionCounter::mark_quiet(double* record, std::int64_t last_sample) const {
  const char* who = "TransitionCounter::mark_quiet: ";
  if (history_.mode != HistoryConfig::Mode::Full)
    throw std::invalid_argument(std::string(who) + "quiet samples need the full history");
  // Only the header fields this reads: the value written lies between two the record already
  // holds, so a valid record stays valid, and the next add_atom_sample or drop_atom validates
  // the whole record as always (mark_quiet runs once per event and must not cost another
  // cache line of the record).
  if (record[4] != kFullTag)
    throw std::invalid_argument(std::string(who) + "corrupt history record (not initialised "
                                "by clear_history)");
  if (!(record[5] >= 0.0))
    throw std::invalid_argument(std::string(who) + "the atom is not being recorded");
  const double last = record[0];
  if (static_cast<double>(last_sample) < last || last_sample > current_ ||
      static_cast<double>(last_sample) >= record[6])
    throw std::invalid_argument(std::string(who) + "sample " + std::to_string(last_sample) +
                                " is not within the atom's quiet samples (last recorded " +
                                std::to_string(static_cast<std::int64_t>(last)) +
                                ", next event " +
                                std::to_string(static_cast<std::int64_t>(record[6])) + ")");
  record[0] = static_cast<double>(last_sample);
}

void TransitionCounter::full_event(double* record, const SiteImage& now) {
  const char* who = "TransitionCounter::add_atom_sample: ";
  full_check_header(record);
  const std::int64_t t = current_;
  const std::int64_t kmax = max_lag_samples();
  const std::size_t nl = lags_.size();
  double* slots = record + kFullHeader;
  double* tail = slots + kmax;
  double* chg = tail + 1;
  double* from = chg + kFullChanges;
  const std::int64_t last = static_cast<std::int64_t>(record[0]);
  if (last >= t)
    throw std::invalid_argument(std::string(who) + "corrupt history record (last sample " +
                                std::to_string(last) + " is not before sample " +
                                std::to_string(t) + ")");
  const double cur_old = record[5];
  const bool active = cur_old >= 0.0;
  if (active && last != prev_sample_)
    throw std::invalid_argument(std::string(who) + "the atom was last recorded at sample " +
                                std::to_string(last) + " and missed sample " +
                                std::to_string(prev_sample_) +
                                " without drop_atom(); its counts would be wrong");
  const std::int64_t lw = static_cast<std::int64_t>(record[7]);
  const double fillv = active ? cur_old : -1.0;
  auto entry_at = [&](std::int64_t j) { return j > lw ? fillv : slots[j % kmax]; };
  // sampled(j) for j in [t - kmax, t - 1]: the global ring slot of t - kmax now holds t
  auto sampled = [&](std::int64_t j) {
    if (j < 0) return false;
    if (j == t - kmax) return origin_ok_.back() != 0;
    return recent_[static_cast<std::size_t>(j % kmax)] == j;
  };

  // 1. Validate and decode everything that will be used; nothing is written before step 3.
  const std::int64_t half = radix_ / 2;
  const int sb = full_sbits_, rb = full_rbits_;
  const std::int64_t smask = (std::int64_t{1} << sb) - 1, rmask = radix_ - 1;
  std::int64_t ucur = 0;
  if (active) full_decode(cur_old, ucur);  // checked by full_check_header
  std::int64_t base[3], ne[3];
  bool fits = true;
  for (int d = 0; d < 3; ++d) {
    base[d] = static_cast<std::int64_t>(record[1 + d]);
    ne[d] = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) - base[d] + half;
    fits = fits && ne[d] >= 0 && ne[d] < radix_;
  }
  // The entry changed (hop, or the atom starts being recorded)? Then every lag pair may
  // change; otherwise only lags whose origin is a change point (the event that brought us
  // here), or every lag when such points may have been forgotten or origins were skipped.
  bool changed = !active || (ucur & smask) != now.site;
  for (int d = 0; d < 3 && !changed; ++d)
    changed = ((ucur >> (sb + d * rb)) & rmask) - half + base[d] !=
              now.image[static_cast<std::size_t>(d)];
  if (scratch_use_.size() < nl) scratch_use_.resize(nl);
  char* eval = scratch_use_.data();
  {
    const bool all = changed || t <= dense_until_;
    const auto n = static_cast<std::int64_t>(tail[0]);
    const std::int64_t kept = std::min<std::int64_t>(n, kFullChanges);
    const std::int64_t oldest =
        kept > 0 ? static_cast<std::int64_t>(chg[(n - kept) % kFullChanges]) : 0;
    for (std::size_t i = 0; i < nl; ++i)
      eval[i] = (all || (n > kFullChanges && t - lags_[i] < oldest)) ? 1 : 0;
    for (std::int64_t q = n - kept; q < n && !all; ++q) {  // lags equal to t - c
      const std::int64_t d = t - static_cast<std::int64_t>(chg[q % kFullChanges]);
      if (d >= 1 && d <= kmax && lag_index_[static_cast<std::size_t>(d)] >= 0)
        eval[static_cast<std::size_t>(lag_index_[static_cast<std::size_t>(d)])] = 1;
    }
  }
  if (scratch_u_.size() < nl) scratch_u_.resize(nl);
  std::int64_t* uold = scratch_u_.data();  // old pair's from entry per lag (-1: none)
  for (std::size_t i = 0; i < nl; ++i) {
    uold[i] = -1;
    if (!eval[i] || !active || from[i] == -1.0) continue;
    if (!full_decode(from[i], uold[i]))
      throw std::invalid_argument(std::string(who) + "corrupt history record (from entry " +
                                  std::to_string(from[i]) + ")");
  }
  // live entries of the window: sampled indices in [t - kmax, t - 1] with an entry
  struct Live {
    std::int64_t j, site;
    std::int64_t img[3];
  };
  std::vector<Live> live;
  bool any_live = false;
  if (fits) {
    // no rebase: validate just the entries the lags read
    for (std::size_t i = 0; i < nl; ++i) {
      if (!eval[i] || !origin_ok_[i]) continue;
      const double v = entry_at(t - lags_[i]);
      std::int64_t u = 0;
      if (v != -1.0 && !full_decode(v, u))
        throw std::invalid_argument(std::string(who) + "corrupt history record (entry " +
                                    std::to_string(v) + " at sample " +
                                    std::to_string(t - lags_[i]) + ")");
    }
  }
  for (std::int64_t j = std::max<std::int64_t>(0, t - kmax); j < t && !fits; ++j) {
    if (!sampled(j)) continue;
    const double v = entry_at(j);
    if (v == -1.0) continue;
    std::int64_t u = 0;
    if (!full_decode(v, u))
      throw std::invalid_argument(std::string(who) + "corrupt history record (entry " +
                                  std::to_string(v) + " at sample " + std::to_string(j) + ")");
    any_live = true;
    Live e{j, u & smask, {0, 0, 0}};
    for (int d = 0; d < 3; ++d) e.img[d] = ((u >> (sb + d * rb)) & rmask) - half + base[d];
    live.push_back(e);
  }
  std::int64_t nb[3] = {base[0], base[1], base[2]};
  if (!fits) {
    if (!any_live) {
      for (int d = 0; d < 3; ++d) nb[d] = now.image[static_cast<std::size_t>(d)];
    } else {
      for (int d = 0; d < 3; ++d) {
        std::int64_t lo = now.image[static_cast<std::size_t>(d)], hi = lo;
        for (const Live& e : live) {
          lo = std::min(lo, e.img[d]);
          hi = std::max(hi, e.img[d]);
        }
        if (hi - lo > radix_ - 1)
          throw std::invalid_argument(
              std::string(who) + "an atom moved over " + std::to_string(hi - lo) +
              " periodic images along cell axis " + std::to_string(d) +
              " within its history window (" + std::to_string(kmax) + " samples); at most " +
              std::to_string(radix_ - 1) + " can be stored with " +
              std::to_string(occupancy_.size()) + " sites");
        const std::int64_t n = now.image[static_cast<std::size_t>(d)];
        nb[d] = (lo - n >= -half && hi - n <= radix_ - 1 - half) ? n : lo + half;
      }
    }
  }

  // 3. Commit: a changed entry makes the implicit entries explicit (fill), then rebase.
  //    (A rebase implies a changed image, so an unchanged entry keeps its implicit ones.)
  if (changed) {  // samples max(lw + 1, t - kmax, 0) .. t - 1, as at most two runs of the ring
    const std::int64_t j0 = std::max({lw + 1, t - kmax, std::int64_t{0}});
    if (j0 < t) {
      const std::int64_t a = j0 % kmax, len = t - j0;
      const std::int64_t first = std::min(len, kmax - a);
      std::fill(slots + a, slots + a + first, fillv);
      std::fill(slots, slots + (len - first), fillv);
    }
  }
  if (!fits) {
    for (const Live& e : live) {
      std::int64_t v = e.site;
      for (int d = 0; d < 3; ++d) v += (e.img[d] - nb[d] + half) << (sb + d * rb);
      slots[e.j % kmax] = static_cast<double>(v);
    }
    for (int d = 0; d < 3; ++d) {
      record[1 + d] = static_cast<double>(nb[d]);
      ne[d] = static_cast<std::int64_t>(now.image[static_cast<std::size_t>(d)]) - nb[d] + half;
    }
  }
  const std::int64_t vnow = now.site + (ne[0] << sb) + (ne[1] << (sb + rb)) + (ne[2] << (sb + 2 * rb));

  // 4. Pairs whose from entry or to entry changed: move the atom between rates. The change
  //    takes effect at this sample (clock before its tick). Keys compare decoded: shifts do
  //    not depend on the base, so old (possibly pre-rebase) and new entries mix safely.
  for (std::size_t i = 0; i < nl; ++i) {
    if (!eval[i]) continue;
    const std::int64_t j = t - lags_[i];
    std::int64_t unew = -1;
    if (origin_ok_[i]) {
      const double v = changed ? slots[j % kmax] : entry_at(j);
      if (v != -1.0) unew = static_cast<std::int64_t>(v);  // live: validated above
    }
    const std::int64_t uo = uold[i];
    bool same = uo < 0 && unew < 0;
    if (uo >= 0 && unew >= 0 && (uo & smask) == (unew & smask) && (ucur & smask) == now.site) {
      same = true;
      for (int d = 0; d < 3 && same; ++d) {
        const std::int64_t so = ((ucur >> (sb + d * rb)) & rmask) - ((uo >> (sb + d * rb)) & rmask);
        const std::int64_t sn = ne[d] - ((unew >> (sb + d * rb)) & rmask);
        same = so == sn;
      }
    }
    if (!same) {
      if (uo >= 0) full_pair_rate(i, uo, ucur, -1, clk_prev_[i]);
      if (unew >= 0) full_pair_rate(i, unew, vnow, +1, clk_prev_[i]);
    }
    from[i] = static_cast<double>(unew);
  }
  if (!active) {
    occupancy_rate(now.site, +1, sclk_prev_);
  } else if ((ucur & smask) != now.site) {
    occupancy_rate(ucur & smask, -1, sclk_prev_);
    occupancy_rate(now.site, +1, sclk_prev_);
  }
  if (changed) {
    const auto n = static_cast<std::int64_t>(tail[0]);
    chg[n % kFullChanges] = static_cast<double>(t);
    tail[0] = static_cast<double>(n + 1);
    slots[t % kmax] = static_cast<double>(vnow);
    record[7] = static_cast<double>(t);
  }
  record[0] = static_cast<double>(t);
  record[5] = static_cast<double>(vnow);
  record[6] = static_cast<double>(full_next_event(record));
}

// The first sample after current_ at which a lag pair of this (recorded) atom changes without
// a change of its entry: when a change point c reaches lag l (sample c + l).
std::int64_t TransitionCounter::full_next_event(const double* record) const {
  const std::int64_t t = current_;
  if (t + 1 <= dense_until_) return t + 1;
  const double* tail = record + kFullHeader + max_lag_samples();
  const double* chg = tail + 1;
  const auto n = static_cast<std::int64_t>(tail[0]);
  const std::int64_t kept = std::min<std::int64_t>(n, kFullChanges);
  if (kept == 0) return static_cast<std::int64_t>(kNever);
  const std::int64_t oldest = static_cast<std::int64_t>(chg[(n - kept) % kFullChanges]);
  // change points older than `oldest` were overwritten: one may lie in (o, oldest) for the
  // origin o of the longest lag
  if (n > kFullChanges && oldest - 1 > t - lags_.back()) return t + 1;
  std::int64_t best = static_cast<std::int64_t>(kNever);
  // origins t - l increase as the lag decreases; points are stored in increasing order: for
  // each lag the first change point after its origin, in one walk
  std::int64_t q = n - kept;
  for (std::size_t i = lags_.size(); i-- > 0;) {
    const std::int64_t o = t - lags_[i];
    while (q < n && static_cast<std::int64_t>(chg[q % kFullChanges]) <= o) ++q;
    if (q == n) break;
    best = std::min(best, static_cast<std::int64_t>(chg[q % kFullChanges]) + lags_[i]);
  }
  return best;
}

void TransitionCounter::drop_atom(double* record) {
  if (history_.mode != HistoryConfig::Mode::Full) return;
  // not being recorded (atoms outside the group, every sample): nothing to do
  if (record[5] < 0.0 && record[4] == kFullTag) return;
  full_check_header(record);
  const double cur = record[5];
  if (cur < 0.0) return;
  const std::int64_t last = static_cast<std::int64_t>(record[0]);
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
  double* slots = record + kFullHeader;
  double* tail = slots + kmax;
  double* chg = tail + 1;
  double* from = chg + kFullChanges;
  std::int64_t ucur = 0;
  full_decode(cur, ucur);
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    std::int64_t u = 0;
    if (from[i] != -1.0 && !full_decode(from[i], u))
      throw std::invalid_argument("TransitionCounter::drop_atom: corrupt history record (from "
                                  "entry " + std::to_string(from[i]) + ")");
  }
  const std::int64_t lw = static_cast<std::int64_t>(record[7]);
  for (std::int64_t j = std::max(lw + 1, last - kmax + 1); j <= last; ++j)
    if (j >= 0) slots[j % kmax] = cur;
  record[7] = static_cast<double>(last);
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    if (from[i] == -1.0) continue;
    full_pair_rate(i, static_cast<std::int64_t>(from[i]), ucur, -1,
                   post ? clk_[i] : clk_prev_[i]);
    from[i] = -1.0;
  }
  occupancy_rate(ucur & ((std::int64_t{1} << full_sbits_) - 1), -1, post ? sclk_ : sclk_prev_);
  const auto n = static_cast<std::int64_t>(tail[0]);
  chg[n % kFullChanges] = static_cast<double>(last + 1);
  tail[0] = static_cast<double>(n + 1);
  record[5] = -1.0;
  record[6] = kNever;
}

void TransitionCounter::restore_atom(const double* record) {
  if (history_.mode != HistoryConfig::Mode::Full) return;
  full_check_header(record);
  const double cur = record[5];
  if (cur < 0.0) return;
  const double* from = record + kFullHeader + max_lag_samples() + 1 + kFullChanges;
  std::int64_t ucur = 0;
  full_decode(cur, ucur);
  std::vector<std::int64_t> u(lags_.size(), -1);
  for (std::size_t i = 0; i < lags_.size(); ++i)
    if (from[i] != -1.0 && !full_decode(from[i], u[i]))
      throw std::invalid_argument("TransitionCounter::restore_atom: corrupt history record (from "
                                  "entry " + std::to_string(from[i]) + ")");
  // the atom holds these pairs from the next sample on
  for (std::size_t i = 0; i < lags_.size(); ++i)
    if (u[i] >= 0) full_pair_rate(i, u[i], ucur, +1, clk_[i]);
  occupancy_rate(ucur & ((std::int64_t{1} << full_sbits_) - 1), +1, sclk_);
}

}  // namespace ionmsm
