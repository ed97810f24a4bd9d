// Rates and lazy integration of `history full` (counting_full.hpp): an entry {n, rate, stamp}
// holds the integral up to clock value `stamp`; an atom that joins (delta = +1) or leaves
// (delta = -1) the pair from clock value c adds delta * (stamp - c) after the entry has been
// brought up to c. Stamps may be ahead of c (a read in the middle of a sample), so the
// differences are signed; counts wrap modulo 2^64 like uint64 sums do.
#include <cstdint>
#include <map>
#include <vector>

#include "ionmsm/counting_full.hpp"

namespace ionmsm {

namespace {

std::int64_t sdiff(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a - b);  // modular difference, as a signed value
}

}  // namespace

void FullHistoryCounter::set_cell(const Eigen::Matrix3d& h) {
  if (h != cell_) {
    // samples before the current one keep the old cell
    settle_to(sclk_prev_, clk_prev_);
  }
  cell_ = h;
}


FullHistoryCounter::RateSlot& FullHistoryCounter::LagRates::slot(std::uint64_t key,
                                                                 std::uint64_t clock) {
  constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  if (2 * (used + 1) > moving.size()) {  // grow: load stays <= 1/2
    std::vector<RateSlot> old;
    old.swap(moving);
    const std::size_t cap = old.empty() ? 64 : 2 * old.size();
    moving.assign(cap, RateSlot{kEmpty, 0, 0, 0});
    int bits = 0;
    while ((std::size_t{1} << bits) < cap) ++bits;
    shift = 64 - bits;
    for (const RateSlot& e : old) {
      if (e.key == kEmpty) continue;
      std::size_t h = static_cast<std::size_t>((e.key * 0x9E3779B97F4A7C15ull) >> shift);
      while (moving[h].key != kEmpty) h = (h + 1) & (cap - 1);
      moving[h] = e;
    }
  }
  const std::size_t mask = moving.size() - 1;
  std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
  while (moving[h].key != key && moving[h].key != kEmpty) h = (h + 1) & mask;
  if (moving[h].key != key) {
    moving[h] = RateSlot{key, 0, clock, 0};
    ++used;
  }
  return moving[h];
}

void FullHistoryCounter::pair_rate(std::size_t lag, std::int64_t uf, std::int64_t ut,
                                       std::int64_t delta, std::uint64_t clock) {
  unsettled_ = true;
  const int sb = sbits_, rb = rbits_;
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
    // one hash lookup: the count stays in the slot until the next settle
    RateSlot& e = lr.slot(key, clock);
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
    if (it == lr.overflow.end())
      it = lr.overflow.emplace(k, std::make_pair(std::int64_t{0}, clock)).first;
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

void FullHistoryCounter::occupancy_rate(std::int64_t site, std::int64_t delta,
                                        std::uint64_t clock) {
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

void FullHistoryCounter::settle_to(std::uint64_t sample_clock,
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

void FullHistoryCounter::settle() const {
  if (!unsettled_) return;
  settle_to(sclk_, clk_);
  unsettled_ = false;
}

void FullHistoryCounter::reset_rates() {
  settle();
  for (LagRates& lr : rates_) {
    std::fill(lr.stay_rate.begin(), lr.stay_rate.end(), 0);
    for (RateSlot& e : lr.moving) e.rate = 0;
    lr.overflow.clear();
  }
  std::fill(occ_rate_.begin(), occ_rate_.end(), 0);
}

}  // namespace ionmsm
