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

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("invalid counts data: " + what);
}

/// Time step and units, sampling, box and sites.
void validate_header(const CountsData& d) {
  const std::size_t n = d.nsites();
  if (n > static_cast<std::size_t>(std::numeric_limits<SiteIndex>::max()))
    invalid("too many sites (" + str(n) + ")");
  if (!(std::isfinite(d.timestep) && d.timestep >= 0.0))
    invalid("timestep must be finite and >= 0, got " + str(d.timestep));
  if (!(std::isfinite(d.timestep_ps) && d.timestep_ps >= 0.0))
    invalid("timestep_ps must be finite and >= 0, got " + str(d.timestep_ps));
  if (!d.units.empty()) {
    double unit = 0.0;
    try {
      unit = time_unit_in_ps(d.units);
    } catch (const std::invalid_argument& e) {
      invalid(e.what());
    }
    const double expect = d.timestep * unit;
    if (std::abs(d.timestep_ps - expect) > 1e-9 * std::abs(expect))
      invalid("timestep_ps = " + str(d.timestep_ps) + " does not match timestep " +
              str(d.timestep) + " in units '" + d.units + "' (expected " + str(expect) + ")");
  }
  if (d.nevery < 1) invalid("nevery must be >= 1, got " + str(d.nevery));
  if (d.n_atoms < 0) invalid("n_atoms must be >= 0, got " + str(d.n_atoms));
  if (d.n_samples > 0) {
    if (d.first_step < 0 || d.last_step < d.first_step)
      invalid("sampled steps must satisfy 0 <= first_step <= last_step, got first_step = " +
              str(d.first_step) + ", last_step = " + str(d.last_step));
  }
  if (!d.box_origin.allFinite()) invalid("box origin has a non-finite component");
  if (!d.box_h.allFinite()) invalid("box matrix h has a non-finite entry");
  if (!(std::abs(d.box_h.determinant()) > 0.0)) invalid("box matrix h is singular");
  for (std::size_t i = 0; i < n; ++i)
    if (!d.site_fractional[i].allFinite())
      invalid("site " + str(i) + " has a non-finite fractional coordinate");
  if (!d.site_labels.empty() && d.site_labels.size() != n)
    invalid("site_labels has " + str(d.site_labels.size()) + " entries for " + str(n) +
            " sites (must be empty or one per site)");
  if (d.occupancy.size() != n)
    invalid("occupancy has " + str(d.occupancy.size()) + " entries for " + str(n) + " sites");
}

/// History (full / multitau M) and assignment (nearest / core radius).
void validate_modes(const CountsData& d) {
  if (d.history && d.history->mode == HistoryConfig::Mode::MultiTau && d.history->m < 1)
    invalid("multitau history needs M >= 1, got " + str(d.history->m));
  if (d.doubles_per_atom < 0)
    invalid("doubles_per_atom must be >= 0, got " + str(d.doubles_per_atom));
  if (d.assign == AssignMode::Core && !(std::isfinite(d.core_radius) && d.core_radius > 0.0))
    invalid("core radius must be finite and > 0, got " + str(d.core_radius));
}

/// Lags strictly increasing multiples of nevery (with their level and displacement sums);
/// rows inside [0, n) x [0, n), non-zero and strictly sorted.
void validate_lags(const CountsData& d) {
  const std::size_t n = d.nsites();
  for (std::size_t i = 0; i < d.lags.size(); ++i) {
    const LagCounts& lc = d.lags[i];
    if (d.has_levels && (lc.level < 0 || lc.level > 62 || lc.lag_steps % d.nevery != 0 ||
                         (lc.lag_steps / d.nevery) % (std::int64_t{1} << lc.level) != 0))
      invalid(lag_name(lc) + ": level " + str(lc.level) + " does not divide the lag in samples");
    if (d.has_displacement &&
        (!lc.displacement_sum.allFinite() || !lc.displacement_sq_sum.allFinite()))
      invalid(lag_name(lc) + ": non-finite displacement sums");
    if (lc.lag_steps <= 0) invalid("lag_steps must be positive, got " + str(lc.lag_steps));
    if (lc.lag_steps % d.nevery != 0)
      invalid("lag_steps " + str(lc.lag_steps) + " is not a multiple of nevery = " +
              str(d.nevery));
    if (i > 0 && lc.lag_steps <= d.lags[i - 1].lag_steps)
      invalid("lags must be strictly increasing, got " + str(d.lags[i - 1].lag_steps) +
              " then " + str(lc.lag_steps));
    if (lc.n_origins > d.n_samples)
      invalid(lag_name(lc) + ": n_origins = " + str(lc.n_origins) + " exceeds n_samples = " +
              str(d.n_samples));
    for (std::size_t k = 0; k < lc.rows.size(); ++k) {
      const TransitionCount& r = lc.rows[k];
      if (r.from < 0 || static_cast<std::size_t>(r.from) >= n || r.to < 0 ||
          static_cast<std::size_t>(r.to) >= n)
        invalid(lag_name(lc) + ", row " + str(k) + ": site indices (" + str(r.from) + ", " +
                str(r.to) + ") outside [0, " + str(n) + ")");
      if (r.count == 0) invalid(lag_name(lc) + ", row " + str(k) + ": count is 0");
      if (k > 0 && !row_less(lc.rows[k - 1], r))
        invalid(lag_name(lc) + ", row " + str(k) +
                ": rows are not strictly sorted by (from, to, shift)");
    }
  }
}

/// One block: its shape (sites x lags) and rows as for the totals.
void validate_block(const CountBlock& blk, std::size_t b, std::size_t n, std::size_t nlags) {
  const std::string name = "block " + str(b) + " (index " + str(blk.index) + ")";
  if (blk.occupancy.size() != n || blk.n_origins.size() != nlags || blk.rows.size() != nlags)
    invalid(name + ": shape " + str(blk.occupancy.size()) + " sites x " +
            str(blk.n_origins.size()) + " lags, expected " + str(n) + " x " + str(nlags));
  for (std::size_t l = 0; l < blk.rows.size(); ++l)
    for (std::size_t k = 0; k < blk.rows[l].size(); ++k) {
      const TransitionCount& r = blk.rows[l][k];
      if (r.from < 0 || static_cast<std::size_t>(r.from) >= n || r.to < 0 ||
          static_cast<std::size_t>(r.to) >= n)
        invalid(name + ", lag index " + str(l) + ", row " + str(k) + ": site outside [0, " +
                str(n) + ")");
      if (r.count == 0)
        invalid(name + ", lag index " + str(l) + ", row " + str(k) + ": count is 0");
      if (k > 0 && !row_less(blk.rows[l][k - 1], r))
        invalid(name + ", lag index " + str(l) + ": rows are not strictly sorted");
    }
}

/// The blocks partition the counts: each valid, and together exactly the totals.
void validate_blocks(const CountsData& d) {
  if (d.block_steps < 0) invalid("block_steps must be >= 0, got " + str(d.block_steps));
  if (d.block_steps == 0 && !d.blocks.empty())
    invalid(str(d.blocks.size()) + " blocks but block_steps = 0 (no blocks)");
  if (d.block_steps == 0) return;
  if (d.block_steps % d.nevery != 0)
    invalid("block_steps " + str(d.block_steps) + " is not a multiple of nevery = " +
            str(d.nevery));
  CountBlock sum = empty_block(d.nsites(), d.lags.size());
  for (std::size_t b = 0; b < d.blocks.size(); ++b) {
    validate_block(d.blocks[b], b, d.nsites(), d.lags.size());
    accumulate(sum, d.blocks[b]);
  }
  const CountBlock tot = totals_block(d);
  if (sum.n_samples != tot.n_samples)
    invalid("blocks hold " + str(sum.n_samples) + " samples, the totals " + str(tot.n_samples));
  if (sum.occupancy != tot.occupancy) invalid("the blocks' occupancies do not sum to the totals");
  for (std::size_t l = 0; l < d.lags.size(); ++l) {
    if (sum.n_origins[l] != tot.n_origins[l])
      invalid(lag_name(d.lags[l]) + ": the blocks hold " + str(sum.n_origins[l]) +
              " origins, the totals " + str(tot.n_origins[l]));
    bool same = sum.rows[l].size() == tot.rows[l].size();
    for (std::size_t k = 0; same && k < sum.rows[l].size(); ++k)
      same = !row_less(sum.rows[l][k], tot.rows[l][k]) &&
             !row_less(tot.rows[l][k], sum.rows[l][k]) &&
             sum.rows[l][k].count == tot.rows[l][k].count;
    if (!same) invalid(lag_name(d.lags[l]) + ": the blocks' counts do not sum to the totals");
  }
}

}  // namespace

void CountsData::validate() const {
  validate_header(*this);
  validate_modes(*this);
  validate_lags(*this);
  validate_blocks(*this);
}

void check_appendable(const CountsData& old, const CountsData& now) {
  auto fail = [](const std::string& what, const std::string& a, const std::string& b) {
    throw std::invalid_argument(what + " differs: " + a + " in the existing file, " + b + " now");
  };
  auto quoted = [](const std::string& s) { return "'" + s + "'"; };
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
  if (old.units != now.units) fail("units", quoted(old.units), quoted(now.units));
  if (old.timestep != now.timestep) fail("timestep", str(old.timestep), str(now.timestep));
  if (old.history && now.history) {
    if (old.history->mode != now.history->mode)
      fail("history", quoted(old.history->name()), quoted(now.history->name()));
    if (old.history->m != now.history->m)
      fail("multitau M", str(old.history->m), str(now.history->m));
  }
  // a file that does not record the assignment was counted with the nearest site
  const AssignMode oa = old.assign.value_or(AssignMode::Nearest);
  const AssignMode na = now.assign.value_or(AssignMode::Nearest);
  if (oa != na) fail("assign", quoted(assign_mode_name(oa)), quoted(assign_mode_name(na)));
  if (oa == AssignMode::Core && old.core_radius != now.core_radius)
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
