// The counts as plain data (counts.hpp): totals, validation, the append check and the
// canonical CSV. No HDF5 here: counts_file_write.cpp and counts_file_read.cpp hold the file.
#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/blocks.hpp"
#include "ionmsm/counts_file.hpp"
#include "ionmsm/text.hpp"

namespace ionmsm {

std::uint64_t LagCounts::total() const {
  std::uint64_t sum = 0;
  for (const auto& r : rows) sum += r.count;
  return sum;
}

std::uint64_t CountBlock::total() const {
  std::uint64_t sum = 0;
  for (const auto& lag : rows)
    for (const auto& r : lag) sum += r.count;
  return sum;
}

std::vector<Eigen::Vector3d> CountsData::site_cartesian() const {
  std::vector<Eigen::Vector3d> out;
  out.reserve(site_fractional.size());
  for (const auto& f : site_fractional) out.push_back(box_origin + box_h * f);
  return out;
}

int CountsData::find_lag(std::int64_t lag) const {
  for (std::size_t i = 0; i < lags.size(); ++i)
    if (lags[i].lag_steps == lag) return static_cast<int>(i);
  return -1;
}

namespace {

bool row_less(const TransitionCount& a, const TransitionCount& b) {
  if (a.from != b.from) return a.from < b.from;
  if (a.to != b.to) return a.to < b.to;
  return a.shift < b.shift;
}

using text::str;

std::string lag_name(const LagCounts& lc) { return "lag " + str(lc.lag_steps) + " steps"; }

}  // namespace

void CountsData::validate() const {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("invalid counts data: " + what);
  };
  const std::size_t n = nsites();
  if (n > static_cast<std::size_t>(std::numeric_limits<SiteIndex>::max()))
    fail("too many sites (" + str(n) + ")");
  if (!(std::isfinite(timestep) && timestep >= 0.0))
    fail("timestep must be finite and >= 0, got " + str(timestep));
  if (!(std::isfinite(timestep_ps) && timestep_ps >= 0.0))
    fail("timestep_ps must be finite and >= 0, got " + str(timestep_ps));
  if (!units.empty()) {
    double unit = 0.0;
    try {
      unit = time_unit_in_ps(units);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    const double expect = timestep * unit;
    if (std::abs(timestep_ps - expect) > 1e-9 * std::abs(expect))
      fail("timestep_ps = " + str(timestep_ps) + " does not match timestep " + str(timestep) +
           " in units '" + units + "' (expected " + str(expect) + ")");
  }
  if (nevery < 1) fail("nevery must be >= 1, got " + str(nevery));
  if (n_atoms < 0) fail("n_atoms must be >= 0, got " + str(n_atoms));
  if (n_samples > 0) {
    if (first_step < 0 || last_step < first_step)
      fail("sampled steps must satisfy 0 <= first_step <= last_step, got first_step = " +
           str(first_step) + ", last_step = " + str(last_step));
  }
  if (!box_origin.allFinite()) fail("box origin has a non-finite component");
  if (!box_h.allFinite()) fail("box matrix h has a non-finite entry");
  if (!(std::abs(box_h.determinant()) > 0.0)) fail("box matrix h is singular");
  for (std::size_t i = 0; i < n; ++i)
    if (!site_fractional[i].allFinite())
      fail("site " + str(i) + " has a non-finite fractional coordinate");
  if (!site_labels.empty() && site_labels.size() != n)
    fail("site_labels has " + str(site_labels.size()) + " entries for " + str(n) +
         " sites (must be empty or one per site)");
  if (occupancy.size() != n)
    fail("occupancy has " + str(occupancy.size()) + " entries for " + str(n) + " sites");

  if (!history.empty() && history != "full" && history != "multitau")
    fail("history must be 'full' or 'multitau', got '" + history + "'");
  if (history == "multitau" && history_m < 1)
    fail("multitau history needs M >= 1, got " + str(history_m));
  if (doubles_per_atom < 0) fail("doubles_per_atom must be >= 0, got " + str(doubles_per_atom));
  if (!assign.empty() && assign != "nearest" && assign != "core")
    fail("assign must be 'nearest' or 'core', got '" + assign + "'");
  if (assign == "core" && !(std::isfinite(core_radius) && core_radius > 0.0))
    fail("core radius must be finite and > 0, got " + str(core_radius));
  for (std::size_t i = 0; i < lags.size(); ++i) {
    const LagCounts& lc = lags[i];
    if (has_levels && (lc.level < 0 || lc.level > 62 ||
                       lc.lag_steps % nevery != 0 ||
                       (lc.lag_steps / nevery) % (std::int64_t{1} << lc.level) != 0))
      fail(lag_name(lc) + ": level " + str(lc.level) + " does not divide the lag in samples");
    if (has_displacement &&
        (!lc.displacement_sum.allFinite() || !lc.displacement_sq_sum.allFinite()))
      fail(lag_name(lc) + ": non-finite displacement sums");
    if (lc.lag_steps <= 0) fail("lag_steps must be positive, got " + str(lc.lag_steps));
    if (lc.lag_steps % nevery != 0)
      fail("lag_steps " + str(lc.lag_steps) + " is not a multiple of nevery = " + str(nevery));
    if (i > 0 && lc.lag_steps <= lags[i - 1].lag_steps)
      fail("lags must be strictly increasing, got " + str(lags[i - 1].lag_steps) + " then " +
           str(lc.lag_steps));
    if (lc.n_origins > n_samples)
      fail(lag_name(lc) + ": n_origins = " + str(lc.n_origins) + " exceeds n_samples = " +
           str(n_samples));
    for (std::size_t k = 0; k < lc.rows.size(); ++k) {
      const TransitionCount& r = lc.rows[k];
      if (r.from < 0 || static_cast<std::size_t>(r.from) >= n || r.to < 0 ||
          static_cast<std::size_t>(r.to) >= n)
        fail(lag_name(lc) + ", row " + str(k) + ": site indices (" + str(r.from) + ", " +
             str(r.to) + ") outside [0, " + str(n) + ")");
      if (r.count == 0) fail(lag_name(lc) + ", row " + str(k) + ": count is 0");
      if (k > 0 && !row_less(lc.rows[k - 1], r))
        fail(lag_name(lc) + ", row " + str(k) +
             ": rows are not strictly sorted by (from, to, shift)");
    }
  }
  if (block_steps < 0) fail("block_steps must be >= 0, got " + str(block_steps));
  if (block_steps == 0 && !blocks.empty())
    fail(str(blocks.size()) + " blocks but block_steps = 0 (no blocks)");
  if (block_steps > 0) {
    if (block_steps % nevery != 0)
      fail("block_steps " + str(block_steps) + " is not a multiple of nevery = " + str(nevery));
    CountBlock sum = empty_block(n, lags.size());
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const CountBlock& blk = blocks[b];
      const std::string name = "block " + str(b) + " (index " + str(blk.index) + ")";
      if (blk.occupancy.size() != n || blk.n_origins.size() != lags.size() ||
          blk.rows.size() != lags.size())
        fail(name + ": shape " + str(blk.occupancy.size()) + " sites x " +
             str(blk.n_origins.size()) + " lags, expected " + str(n) + " x " + str(lags.size()));
      for (std::size_t l = 0; l < blk.rows.size(); ++l)
        for (std::size_t k = 0; k < blk.rows[l].size(); ++k) {
          const TransitionCount& r = blk.rows[l][k];
          if (r.from < 0 || static_cast<std::size_t>(r.from) >= n || r.to < 0 ||
              static_cast<std::size_t>(r.to) >= n)
            fail(name + ", lag index " + str(l) + ", row " + str(k) + ": site outside [0, " +
                 str(n) + ")");
          if (r.count == 0) fail(name + ", lag index " + str(l) + ", row " + str(k) + ": count is 0");
          if (k > 0 && !row_less(blk.rows[l][k - 1], r))
            fail(name + ", lag index " + str(l) + ": rows are not strictly sorted");
        }
      accumulate(sum, blk);
    }
    // the blocks partition the counts: they must sum to the totals exactly
    const CountBlock tot = totals_block(*this);
    if (sum.n_samples != tot.n_samples)
      fail("blocks hold " + str(sum.n_samples) + " samples, the totals " + str(tot.n_samples));
    if (sum.occupancy != tot.occupancy) fail("the blocks' occupancies do not sum to the totals");
    for (std::size_t l = 0; l < lags.size(); ++l) {
      if (sum.n_origins[l] != tot.n_origins[l])
        fail(lag_name(lags[l]) + ": the blocks hold " + str(sum.n_origins[l]) +
             " origins, the totals " + str(tot.n_origins[l]));
      bool same = sum.rows[l].size() == tot.rows[l].size();
      for (std::size_t k = 0; same && k < sum.rows[l].size(); ++k)
        same = !row_less(sum.rows[l][k], tot.rows[l][k]) &&
               !row_less(tot.rows[l][k], sum.rows[l][k]) &&
               sum.rows[l][k].count == tot.rows[l][k].count;
      if (!same) fail(lag_name(lags[l]) + ": the blocks' counts do not sum to the totals");
    }
  }
}

void check_appendable(const CountsData& old, const CountsData& now) {
  auto fail = [](const std::string& what, const std::string& a, const std::string& b) {
    throw std::invalid_argument(what + " differs: " + a + " in the existing file, " + b + " now");
  };
  if (old.nevery != now.nevery) fail("Nevery", str(old.nevery), str(now.nevery));
  auto lag_list = [](const CountsData& d) {
    std::string s;
    for (const auto& lc : d.lags) s += (s.empty() ? "" : " ") + str(lc.lag_steps);
    return "(" + s + ")";
  };
  if (lag_list(old) != lag_list(now)) fail("lags", lag_list(old), lag_list(now));
  if (old.nsites() != now.nsites())
    fail("number of sites", str(old.nsites()), str(now.nsites()));
  for (std::size_t i = 0; i < old.nsites(); ++i) {
    Eigen::Vector3d d = old.site_fractional[i] - now.site_fractional[i];
    for (int k = 0; k < 3; ++k) d[k] -= std::round(d[k]);  // both are wrapped into [0, 1)
    if (d.cwiseAbs().maxCoeff() > 1e-9)
      fail("fractional coordinates of site " + str(i),
           "(" + str(old.site_fractional[i][0]) + ", " + str(old.site_fractional[i][1]) + ", " +
               str(old.site_fractional[i][2]) + ")",
           "(" + str(now.site_fractional[i][0]) + ", " + str(now.site_fractional[i][1]) + ", " +
               str(now.site_fractional[i][2]) + ")");
  }
  if (old.units != now.units) fail("units", "'" + old.units + "'", "'" + now.units + "'");
  if (old.timestep != now.timestep) fail("timestep", str(old.timestep), str(now.timestep));
  if (!old.history.empty() && !now.history.empty()) {
    if (old.history != now.history)
      fail("history", "'" + old.history + "'", "'" + now.history + "'");
    if (old.history_m != now.history_m) fail("multitau M", str(old.history_m), str(now.history_m));
  }
  const std::string oa = old.assign.empty() ? "nearest" : old.assign;
  const std::string na = now.assign.empty() ? "nearest" : now.assign;
  if (oa != na) fail("assign", "'" + oa + "'", "'" + na + "'");
  if (oa == "core" && old.core_radius != now.core_radius)
    fail("core radius", str(old.core_radius), str(now.core_radius));
  if (old.block_steps != now.block_steps) {
    auto name = [](std::int64_t b) { return b > 0 ? "blocks " + str(b) : std::string("no blocks"); };
    fail("block length", name(old.block_steps), name(now.block_steps));
  }
  if (now.has_displacement && !old.has_displacement)
    throw std::invalid_argument(
        "the existing file has no displacement sums (/lags/displacement_sum), so they cannot be "
        "continued");
}

void write_counts_csv(std::ostream& os, const CountsData& data, std::int64_t lag_steps) {
  if (lag_steps >= 0 && data.find_lag(lag_steps) < 0) {
    std::string have;
    for (const auto& lc : data.lags) have += (have.empty() ? "" : ", ") + str(lc.lag_steps);
    throw std::invalid_argument("lag " + str(lag_steps) + " steps is not in the counts data " +
                                "(available lags in steps: " + (have.empty() ? "none" : have) +
                                ")");
  }
  os << "lag_steps,from,to,shift_x,shift_y,shift_z,count\n";
  // lags are stored in increasing order and rows sorted, so storage order is canonical; sort
  // defensively anyway for data that was never validated.
  std::vector<const LagCounts*> order;
  for (const auto& lc : data.lags)
    if (lag_steps < 0 || lc.lag_steps == lag_steps) order.push_back(&lc);
  std::stable_sort(order.begin(), order.end(), [](const LagCounts* a, const LagCounts* b) {
    return a->lag_steps < b->lag_steps;
  });
  std::string line;
  for (const LagCounts* lc : order) {
    const std::vector<TransitionCount>* rows = &lc->rows;
    std::vector<TransitionCount> sorted;
    if (!std::is_sorted(rows->begin(), rows->end(), row_less)) {
      sorted = *rows;
      std::stable_sort(sorted.begin(), sorted.end(), row_less);
      rows = &sorted;
    }
    const std::string lag = std::to_string(lc->lag_steps) + ',';
    for (const auto& r : *rows) {
      line.clear();
      line += lag;
      line += std::to_string(r.from);
      line += ',';
      line += std::to_string(r.to);
      for (int d = 0; d < 3; ++d) {
        line += ',';
        line += std::to_string(r.shift[d]);
      }
      line += ',';
      line += std::to_string(r.count);
      line += '\n';
      os << line;
    }
  }
}

}  // namespace ionmsm
