// The counts file (HDF5). Schema: docs/file-format.md. Uses the HDF5 C API only; no HDF5 type
// leaks into the header.
#include "ionmsm/counts_file.hpp"

#include <hdf5.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ionmsm/blocks.hpp"
#include "ionmsm/hdf5_util.hpp"
#include "ionmsm/text.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm {

// =============================================================================== plain data

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

// =============================================================================== HDF5 helpers

namespace {

using namespace hdf5_util;

// ------------------------------------------------------------------------------- writing

/// Every dataset with at least one element is chunked and carries HDF5's Fletcher-32 checksum
/// filter, so that a reader detects bytes changed after writing (docs/file-format.md,
/// "Checksums"); datasets with at least kCompressRows rows are also compressed (shuffle +
/// deflate, applied before the checksum).
constexpr hsize_t kCompressRows = 32768;
constexpr hsize_t kChunkRows = 32768;

/// Creation properties of a dataset of shape dims[0 .. rank). Variable-length strings cannot
/// take the checksum filter (HDF5 refuses it): checksum = false.
Handle dataset_create_plist(int rank, const hsize_t* dims, bool checksum = true) {
  Handle plist = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "cannot create property list");
  const hsize_t rows = dims[0];
  hsize_t n = 1;
  for (int k = 0; k < rank; ++k) n *= dims[k];
  if (n == 0) return plist;  // nothing to protect; a chunk may not be empty
  if (!checksum && rows < kCompressRows) return plist;
  hsize_t chunk[H5S_MAX_RANK];
  chunk[0] = std::min(rows, kChunkRows);
  for (int k = 1; k < rank; ++k) chunk[k] = dims[k];
  if (H5Pset_chunk(plist, rank, chunk) < 0) h5fail("cannot set up chunked storage");
  if (rows >= kCompressRows && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 &&
      H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0) {
    if (H5Pset_shuffle(plist) < 0 || H5Pset_deflate(plist, 1) < 0)
      h5fail("cannot set up compression");
  }
  if (checksum && H5Pset_fletcher32(plist) < 0)
    h5fail("cannot set up the Fletcher-32 checksum filter");
  return plist;
}

Handle make_group(hid_t parent, const char* name) {
  return checked(H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                 std::string("cannot create group '") + name + "'");
}

/// Writes a 1-D (cols == 0) or 2-D (rows x cols) dataset from contiguous row-major data.
template <class T>
void write_dataset(hid_t parent, const char* name, const T* data, hsize_t rows, hsize_t cols = 0) {
  const int rank = cols == 0 ? 1 : 2;
  const hsize_t dims[2] = {rows, cols};
  Handle space = checked(H5Screate_simple(rank, dims, nullptr), H5Sclose,
                         std::string("cannot create dataspace for '") + name + "'");
  Handle plist = dataset_create_plist(rank, dims);
  Handle dset = checked(H5Dcreate2(parent, name, file_type<T>(), space, H5P_DEFAULT, plist,
                                   H5P_DEFAULT),
                        H5Dclose, std::string("cannot create dataset '") + name + "'");
  const hsize_t n = rows * (cols == 0 ? 1 : cols);
  if (n > 0 && H5Dwrite(dset, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    h5fail(std::string("cannot write dataset '") + name + "'");
}

template <class T>
void write_dataset(hid_t parent, const char* name, const std::vector<T>& v, hsize_t cols = 0) {
  const hsize_t rows = cols == 0 ? v.size() : v.size() / cols;
  write_dataset(parent, name, v.data(), rows, cols);
}

void write_string_dataset(hid_t parent, const char* name, const std::vector<std::string>& v) {
  const hsize_t dims[1] = {v.size()};
  Handle type = vlen_string_type();
  Handle space = checked(H5Screate_simple(1, dims, nullptr), H5Sclose,
                         std::string("cannot create dataspace for '") + name + "'");
  Handle plist = dataset_create_plist(1, dims, false);
  Handle dset = checked(H5Dcreate2(parent, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT),
                        H5Dclose, std::string("cannot create dataset '") + name + "'");
  std::vector<const char*> ptrs;
  ptrs.reserve(v.size());
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (!ptrs.empty() && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    h5fail(std::string("cannot write dataset '") + name + "'");
}

template <class T>
void write_attribute(hid_t obj, const char* name, T value) {
  Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, "cannot create dataspace");
  Handle attr = checked(H5Acreate2(obj, name, file_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT),
                        H5Aclose, std::string("cannot create attribute '") + name + "'");
  if (H5Awrite(attr, native_type<T>(), &value) < 0)
    h5fail(std::string("cannot write attribute '") + name + "'");
}

void write_attribute(hid_t obj, const char* name, const std::string& value) {
  Handle type = vlen_string_type();
  Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, "cannot create dataspace");
  Handle attr = checked(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                        std::string("cannot create attribute '") + name + "'");
  const char* p = value.c_str();
  if (H5Awrite(attr, type, &p) < 0) h5fail(std::string("cannot write attribute '") + name + "'");
}

/// Optional /blocks group (docs/file-format.md, "Blocks").
void write_blocks(hid_t file, const CountsData& d) {
  write_attribute(file, "block_steps", d.block_steps);
  Handle g = make_group(file, "blocks");
  const std::size_t nb = d.blocks.size(), nl = d.lags.size(), ns = d.nsites();
  std::vector<std::int64_t> index, row_offset{0};
  std::vector<std::uint64_t> n_samples, origins, occupancy, count;
  std::vector<std::int32_t> from, to, shift;
  for (const auto& b : d.blocks) {
    index.push_back(b.index);
    n_samples.push_back(b.n_samples);
    origins.insert(origins.end(), b.n_origins.begin(), b.n_origins.end());
    occupancy.insert(occupancy.end(), b.occupancy.begin(), b.occupancy.end());
    for (const auto& rows : b.rows) {
      for (const auto& r : rows) {
        from.push_back(r.from);
        to.push_back(r.to);
        shift.insert(shift.end(), {r.shift[0], r.shift[1], r.shift[2]});
        count.push_back(r.count);
      }
      row_offset.push_back(static_cast<std::int64_t>(count.size()));
    }
  }
  write_dataset(g, "index", index);
  write_dataset(g, "n_samples", n_samples);
  if (nl > 0) write_dataset(g, "n_origins", origins.data(), nb, nl);
  if (ns > 0) write_dataset(g, "occupancy", occupancy.data(), nb, ns);
  write_dataset(g, "row_offset", row_offset);
  write_dataset(g, "from", from);
  write_dataset(g, "to", to);
  write_dataset(g, "shift", shift.data(), count.size(), 3);
  write_dataset(g, "count", count);
}

void write_contents(hid_t file, const CountsData& d) {
  // root attributes
  write_attribute(file, "format", std::string(kCountsFormatTag));
  write_attribute(file, "format_version", static_cast<std::int32_t>(kCountsFormatVersion));
  write_attribute(file, "ionmsm_version", d.ionmsm_version);
  write_attribute(file, "lammps_version", d.lammps_version);
  write_attribute(file, "command", d.command);
  write_attribute(file, "units", d.units);
  write_attribute(file, "timestep", d.timestep);
  write_attribute(file, "timestep_ps", d.timestep_ps);
  write_attribute(file, "nevery", d.nevery);
  write_attribute(file, "first_step", d.first_step);
  write_attribute(file, "last_step", d.last_step);
  write_attribute(file, "n_atoms", d.n_atoms);
  write_attribute(file, "n_samples", d.n_samples);
  if (!d.history.empty()) {
    write_attribute(file, "history", d.history);
    write_attribute(file, "history_m", d.history_m);
  }
  if (d.doubles_per_atom > 0) {
    write_attribute(file, "doubles_per_atom", d.doubles_per_atom);
    write_attribute(file, "bytes_per_atom", static_cast<std::int64_t>(8 * d.doubles_per_atom));
  }
  if (!d.assign.empty()) write_attribute(file, "assign", d.assign);
  if (d.assign == "core") {
    write_attribute(file, "core_radius", d.core_radius);
    write_attribute(file, "n_outside_core", d.n_outside_core);
    std::uint64_t occ = 0;
    for (auto o : d.occupancy) occ += o;
    write_attribute(file, "fraction_outside_core",
                    occ > 0 ? static_cast<double>(d.n_outside_core) / static_cast<double>(occ)
                            : 0.0);
  }

  {
    Handle box = make_group(file, "box");
    write_dataset(box, "origin", d.box_origin.data(), 3);
    std::vector<double> h(9);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) h[static_cast<std::size_t>(3 * i + j)] = d.box_h(i, j);
    write_dataset(box, "h", h, 3);
  }

  {
    Handle sites = make_group(file, "sites");
    const std::size_t n = d.nsites();
    std::vector<double> buf(3 * n);
    for (std::size_t i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k) buf[3 * i + static_cast<std::size_t>(k)] = d.site_fractional[i][k];
    write_dataset(sites, "fractional", buf, 3);
    const auto cart = d.site_cartesian();
    for (std::size_t i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k) buf[3 * i + static_cast<std::size_t>(k)] = cart[i][k];
    write_dataset(sites, "cartesian", buf, 3);
    const bool any_label = std::any_of(d.site_labels.begin(), d.site_labels.end(),
                                       [](const std::string& s) { return !s.empty(); });
    if (any_label) write_string_dataset(sites, "labels", d.site_labels);
    write_dataset(sites, "occupancy", d.occupancy);
  }

  const std::size_t nlags = d.lags.size();
  std::size_t m = 0;
  for (const auto& lc : d.lags) m += lc.rows.size();
  {
    Handle lags = make_group(file, "lags");
    std::vector<std::int64_t> lag_steps, row_offset{0};
    std::vector<std::uint64_t> n_origins, totals;
    for (const auto& lc : d.lags) {
      lag_steps.push_back(lc.lag_steps);
      n_origins.push_back(lc.n_origins);
      totals.push_back(lc.total());
      row_offset.push_back(row_offset.back() + static_cast<std::int64_t>(lc.rows.size()));
    }
    write_dataset(lags, "lag_steps", lag_steps);
    write_dataset(lags, "n_origins", n_origins);
    write_dataset(lags, "total_counts", totals);
    write_dataset(lags, "row_offset", row_offset);
    if (d.has_levels) {
      std::vector<std::int32_t> level;
      for (const auto& lc : d.lags) level.push_back(lc.level);
      write_dataset(lags, "level", level);
    }
    if (d.has_displacement) {
      std::vector<double> sum, sq;
      for (const auto& lc : d.lags) {
        for (int a = 0; a < 3; ++a) sum.push_back(lc.displacement_sum[a]);
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) sq.push_back(lc.displacement_sq_sum(a, b));
      }
      write_dataset(lags, "displacement_sum", sum, 3);
      const hsize_t dims[3] = {static_cast<hsize_t>(d.lags.size()), 3, 3};
      Handle space = checked(H5Screate_simple(3, dims, nullptr), H5Sclose,
                             "cannot create dataspace for 'displacement_sq_sum'");
      Handle plist = dataset_create_plist(3, dims);
      Handle dset = checked(H5Dcreate2(lags, "displacement_sq_sum", H5T_IEEE_F64LE, space,
                                       H5P_DEFAULT, plist, H5P_DEFAULT),
                            H5Dclose, "cannot create dataset 'displacement_sq_sum'");
      if (!sq.empty() &&
          H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sq.data()) < 0)
        h5fail("cannot write dataset 'displacement_sq_sum'");
    }
  }
  {
    Handle counts = make_group(file, "counts");
    std::vector<std::int32_t> col(m), shift(3 * m);
    std::size_t k = 0;
    for (std::size_t i = 0; i < nlags; ++i)
      for (std::size_t r = 0; r < d.lags[i].rows.size(); ++r) col[k++] = static_cast<std::int32_t>(i);
    write_dataset(counts, "lag_index", col);
    k = 0;
    for (const auto& lc : d.lags)
      for (const auto& r : lc.rows) col[k++] = r.from;
    write_dataset(counts, "from", col);
    k = 0;
    for (const auto& lc : d.lags)
      for (const auto& r : lc.rows) col[k++] = r.to;
    write_dataset(counts, "to", col);
    k = 0;
    for (const auto& lc : d.lags)
      for (const auto& r : lc.rows)
        for (int c = 0; c < 3; ++c) shift[k++] = r.shift[static_cast<std::size_t>(c)];
    write_dataset(counts, "shift", shift, 3);
    std::vector<std::int32_t>().swap(col);
    std::vector<std::int32_t>().swap(shift);
    std::vector<std::uint64_t> cnt(m);
    k = 0;
    for (const auto& lc : d.lags)
      for (const auto& r : lc.rows) cnt[k++] = r.count;
    write_dataset(counts, "count", cnt);
  }
  if (d.block_steps > 0) write_blocks(file, d);
}

// ------------------------------------------------------------------------------- reading

/// Reads one counts file; every failure is a std::runtime_error that names the file.
class Reader {
 public:
  Reader(const std::string& path, hid_t file) : path_(path), file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("counts file '" + path_ + "': " + what);
  }

  bool exists(const std::string& name) const {
    // check every component: H5Lexists fails when an intermediate group is missing
    std::size_t pos = 0;
    while (true) {
      pos = name.find('/', pos + 1);
      const std::string prefix = name.substr(0, pos);
      if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      if (pos == std::string::npos) return true;
    }
  }

  bool has_attribute(const char* name) const {
    const htri_t has = H5Aexists(file_, name);
    if (has < 0) h5fail_here(std::string("cannot check for attribute '") + name + "'");
    return has > 0;
  }

  Handle open_attribute(const char* name) const {
    const htri_t has = H5Aexists(file_, name);
    if (has < 0) h5fail_here(std::string("cannot check for attribute '") + name + "'");
    if (has == 0) fail(std::string("missing root attribute '") + name + "'");
    Handle attr(H5Aopen(file_, name, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) h5fail_here(std::string("cannot open attribute '") + name + "'");
    Handle space(H5Aget_space(attr), H5Sclose);
    if (!space.valid() || H5Sget_simple_extent_npoints(space) != 1)
      fail(std::string("root attribute '") + name + "' is not a single value");
    return attr;
  }

  std::string read_string_attribute(const char* name) const {
    Handle attr = open_attribute(name);
    Handle type(H5Aget_type(attr), H5Tclose);
    if (!type.valid() || H5Tget_class(type) != H5T_STRING)
      fail(std::string("root attribute '") + name + "' is not a string");
    std::string out;
    if (H5Tis_variable_str(type) > 0) {
      char* p = nullptr;
      if (H5Aread(attr, type, &p) < 0) h5fail_here(std::string("cannot read attribute '") + name + "'");
      if (p) {
        out = p;
        H5free_memory(p);
      }
    } else {
      const std::size_t size = H5Tget_size(type);
      std::vector<char> buf(size + 1, '\0');
      if (H5Aread(attr, type, buf.data()) < 0)
        h5fail_here(std::string("cannot read attribute '") + name + "'");
      out = trim_fixed(buf.data(), size);
    }
    return out;
  }

  template <class T>
  T read_number_attribute(const char* name) const {
    Handle attr = open_attribute(name);
    Handle type(H5Aget_type(attr), H5Tclose);
    const H5T_class_t cls = type.valid() ? H5Tget_class(type) : H5T_NO_CLASS;
    const bool ok = std::is_floating_point_v<T> ? (cls == H5T_FLOAT || cls == H5T_INTEGER)
                                                : cls == H5T_INTEGER;
    if (!ok)
      fail(std::string("root attribute '") + name + "' is not " +
           (std::is_floating_point_v<T> ? "a number" : "an integer"));
    T value{};
    if (H5Aread(attr, native_type<T>(), &value) < 0)
      h5fail_here(std::string("cannot read attribute '") + name + "'");
    return value;
  }

  /// Reads a numeric dataset of shape (rows) if cols == 0, else (rows, cols). rows < 0: any.
  template <class T>
  std::vector<T> read_dataset(const std::string& name, long long rows, hsize_t cols,
                              hsize_t* rows_out = nullptr) const {
    if (!exists(name)) fail("missing dataset '" + name + "'");
    Handle dset(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dset.valid()) h5fail_here("cannot open dataset '" + name + "'");
    Handle type(H5Dget_type(dset), H5Tclose);
    const H5T_class_t cls = type.valid() ? H5Tget_class(type) : H5T_NO_CLASS;
    const bool floating = std::is_floating_point_v<T>;
    if (floating ? cls != H5T_FLOAT : cls != H5T_INTEGER)
      fail("dataset '" + name + "' does not hold " + (floating ? "floating-point" : "integer") +
           " values");
    const hsize_t got = check_shape(dset, name, rows, cols);
    if (rows_out) *rows_out = got;
    const std::size_t n = static_cast<std::size_t>(got * (cols == 0 ? 1 : cols));
    std::vector<T> out(n);
    if (n > 0 && H5Dread(dset, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      h5fail_here("cannot read dataset '" + name + "'");
    return out;
  }

  /// Reads a float64 dataset of shape (rows, 3, 3).
  std::vector<double> read_dataset3x3(const std::string& name, long long rows) const {
    if (!exists(name)) fail("missing dataset '" + name + "'");
    Handle dset(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dset.valid()) h5fail_here("cannot open dataset '" + name + "'");
    Handle type(H5Dget_type(dset), H5Tclose);
    if (!type.valid() || H5Tget_class(type) != H5T_FLOAT)
      fail("dataset '" + name + "' does not hold floating-point values");
    Handle space(H5Dget_space(dset), H5Sclose);
    hsize_t dims[H5S_MAX_RANK] = {0};
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space) : -1;
    if (rank == 3) H5Sget_simple_extent_dims(space, dims, nullptr);
    if (rank != 3 || dims[0] != static_cast<hsize_t>(rows) || dims[1] != 3 || dims[2] != 3)
      fail("dataset '" + name + "' must have shape (" + std::to_string(rows) + ", 3, 3)");
    std::vector<double> out(static_cast<std::size_t>(rows) * 9);
    if (!out.empty() &&
        H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      h5fail_here("cannot read dataset '" + name + "'");
    return out;
  }

  std::vector<std::string> read_string_dataset(const std::string& name, long long rows) const {
    Handle dset(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dset.valid()) h5fail_here("cannot open dataset '" + name + "'");
    Handle type(H5Dget_type(dset), H5Tclose);
    if (!type.valid() || H5Tget_class(type) != H5T_STRING)
      fail("dataset '" + name + "' does not hold strings");
    const hsize_t got = check_shape(dset, name, rows, 0);
    const std::size_t n = static_cast<std::size_t>(got);
    std::vector<std::string> out(n);
    if (n == 0) return out;
    if (H5Tis_variable_str(type) > 0) {
      std::vector<char*> ptrs(n, nullptr);
      if (H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
        h5fail_here("cannot read dataset '" + name + "'");
      for (std::size_t i = 0; i < n; ++i) {
        if (ptrs[i]) {
          out[i] = ptrs[i];
          H5free_memory(ptrs[i]);
        }
      }
    } else {
      const std::size_t size = H5Tget_size(type);
      std::vector<char> buf(n * size + 1, '\0');
      if (H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
        h5fail_here("cannot read dataset '" + name + "'");
      for (std::size_t i = 0; i < n; ++i) out[i] = trim_fixed(buf.data() + i * size, size);
    }
    return out;
  }

 private:
  [[noreturn]] void h5fail_here(const std::string& what) const {
    if (hdf5_checksum_error()) {
      H5Eclear2(H5E_DEFAULT);
      fail(damaged_message(what));
    }
    try {
      h5fail(what);
    } catch (const H5Failure& e) {
      fail(e.what());
    }
  }

  static std::string trim_fixed(const char* p, std::size_t size) {
    std::size_t len = 0;
    while (len < size && p[len] != '\0') ++len;
    while (len > 0 && p[len - 1] == ' ') --len;  // H5T_STR_SPACEPAD
    return std::string(p, len);
  }

  hsize_t check_shape(hid_t dset, const std::string& name, long long rows, hsize_t cols) const {
    Handle space(H5Dget_space(dset), H5Sclose);
    if (!space.valid()) h5fail_here("cannot get the shape of dataset '" + name + "'");
    const int want_rank = cols == 0 ? 1 : 2;
    const int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank == want_rank) H5Sget_simple_extent_dims(space, dims, nullptr);
    const bool ok = rank == want_rank && (rows < 0 || dims[0] == static_cast<hsize_t>(rows)) &&
                    (cols == 0 || dims[1] == cols);
    if (!ok) {
      std::string want = "(" + (rows < 0 ? std::string("N") : std::to_string(rows)) +
                         (cols == 0 ? "" : ", " + std::to_string(cols)) + ")";
      std::string have = "(";
      if (rank < 0) {
        have = "unreadable";
      } else {
        H5Sget_simple_extent_dims(space, dims, nullptr);
        for (int i = 0; i < rank; ++i) have += (i ? ", " : "") + std::to_string(dims[i]);
        have += ")";
      }
      fail("dataset '" + name + "' has shape " + have + ", expected " + want);
    }
    return dims[0];
  }

  static std::string damaged_message(const std::string& what) {
    return "the file is damaged: " + what +
           ": its checksum does not match the stored bytes (the file changed after "
           "it was written; restore it from a copy or rerun)";
  }

  std::string path_;
  hid_t file_;
};

void read_blocks(const Reader& rd, CountsData& d) {
  hsize_t nb = 0;
  const auto index = rd.read_dataset<std::int64_t>("/blocks/index", -1, 0, &nb);
  const auto B = static_cast<long long>(nb);
  const std::size_t nl = d.lags.size(), ns = d.nsites();
  const auto n_samples = rd.read_dataset<std::uint64_t>("/blocks/n_samples", B, 0);
  std::vector<std::uint64_t> origins, occupancy;
  if (nl > 0) origins = rd.read_dataset<std::uint64_t>("/blocks/n_origins", B, nl);
  if (ns > 0) occupancy = rd.read_dataset<std::uint64_t>("/blocks/occupancy", B, ns);
  const auto offsets =
      rd.read_dataset<std::int64_t>("/blocks/row_offset", B * static_cast<long long>(nl) + 1, 0);
  hsize_t m = 0;
  const auto count = rd.read_dataset<std::uint64_t>("/blocks/count", -1, 0, &m);
  const auto M = static_cast<long long>(m);
  const auto from = rd.read_dataset<std::int32_t>("/blocks/from", M, 0);
  const auto to = rd.read_dataset<std::int32_t>("/blocks/to", M, 0);
  const auto shift = rd.read_dataset<std::int32_t>("/blocks/shift", M, 3);
  if (offsets.front() != 0 || offsets.back() != M)
    rd.fail("/blocks/row_offset must start at 0 and end at the number of block rows (" +
            std::to_string(M) + ")");
  d.blocks.resize(static_cast<std::size_t>(nb));
  for (std::size_t b = 0; b < d.blocks.size(); ++b) {
    CountBlock& blk = d.blocks[b];
    blk.index = index[b];
    blk.n_samples = n_samples[b];
    blk.n_origins.assign(origins.begin() + static_cast<std::ptrdiff_t>(b * nl),
                         origins.begin() + static_cast<std::ptrdiff_t>((b + 1) * nl));
    blk.occupancy.assign(occupancy.begin() + static_cast<std::ptrdiff_t>(b * ns),
                         occupancy.begin() + static_cast<std::ptrdiff_t>((b + 1) * ns));
    blk.rows.assign(nl, {});
    for (std::size_t l = 0; l < nl; ++l) {
      const std::int64_t begin = offsets[b * nl + l], end = offsets[b * nl + l + 1];
      if (begin > end)
        rd.fail("/blocks/row_offset decreases at block " + std::to_string(b) + ", lag index " +
                std::to_string(l));
      for (std::int64_t k = begin; k < end; ++k) {
        const auto kk = static_cast<std::size_t>(k);
        TransitionCount r;
        r.from = from[kk];
        r.to = to[kk];
        r.shift = {shift[3 * kk], shift[3 * kk + 1], shift[3 * kk + 2]};
        r.count = count[kk];
        blk.rows[l].push_back(r);
      }
    }
  }
}

CountsData read_contents(const Reader& rd) {
  CountsData d;
  d.ionmsm_version = rd.read_string_attribute("ionmsm_version");
  d.lammps_version = rd.read_string_attribute("lammps_version");
  d.command = rd.read_string_attribute("command");
  d.units = rd.read_string_attribute("units");
  d.timestep = rd.read_number_attribute<double>("timestep");
  d.timestep_ps = rd.read_number_attribute<double>("timestep_ps");
  d.nevery = rd.read_number_attribute<std::int64_t>("nevery");
  d.first_step = rd.read_number_attribute<std::int64_t>("first_step");
  d.last_step = rd.read_number_attribute<std::int64_t>("last_step");
  d.n_atoms = rd.read_number_attribute<std::int64_t>("n_atoms");
  d.n_samples = rd.read_number_attribute<std::uint64_t>("n_samples");
  // optional attributes (newer writers of format version 1)
  if (rd.has_attribute("history")) {
    d.history = rd.read_string_attribute("history");
    if (rd.has_attribute("history_m")) d.history_m = rd.read_number_attribute<std::int64_t>("history_m");
  }
  if (rd.has_attribute("doubles_per_atom"))
    d.doubles_per_atom = rd.read_number_attribute<std::int64_t>("doubles_per_atom");
  if (rd.has_attribute("assign")) d.assign = rd.read_string_attribute("assign");
  if (rd.has_attribute("core_radius")) d.core_radius = rd.read_number_attribute<double>("core_radius");
  if (rd.has_attribute("n_outside_core"))
    d.n_outside_core = rd.read_number_attribute<std::uint64_t>("n_outside_core");

  {
    const auto origin = rd.read_dataset<double>("/box/origin", 3, 0);
    const auto h = rd.read_dataset<double>("/box/h", 3, 3);
    for (int i = 0; i < 3; ++i) {
      d.box_origin[i] = origin[static_cast<std::size_t>(i)];
      for (int j = 0; j < 3; ++j) d.box_h(i, j) = h[static_cast<std::size_t>(3 * i + j)];
    }
  }

  {
    hsize_t n = 0;
    const auto frac = rd.read_dataset<double>("/sites/fractional", -1, 3, &n);
    d.site_fractional.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < d.site_fractional.size(); ++i)
      d.site_fractional[i] = Eigen::Vector3d(frac[3 * i], frac[3 * i + 1], frac[3 * i + 2]);
    d.occupancy = rd.read_dataset<std::uint64_t>("/sites/occupancy", static_cast<long long>(n), 0);
    if (rd.exists("/sites/labels"))
      d.site_labels = rd.read_string_dataset("/sites/labels", static_cast<long long>(n));
  }

  hsize_t nlags = 0;
  const auto lag_steps = rd.read_dataset<std::int64_t>("/lags/lag_steps", -1, 0, &nlags);
  const auto L = static_cast<long long>(nlags);
  const auto n_origins = rd.read_dataset<std::uint64_t>("/lags/n_origins", L, 0);
  const auto totals = rd.read_dataset<std::uint64_t>("/lags/total_counts", L, 0);
  const auto offsets = rd.read_dataset<std::int64_t>("/lags/row_offset", L + 1, 0);

  std::vector<std::int32_t> levels;
  if (rd.exists("/lags/level")) {
    levels = rd.read_dataset<std::int32_t>("/lags/level", L, 0);
    d.has_levels = true;
  }
  std::vector<double> dsum, dsq;
  if (rd.exists("/lags/displacement_sum") || rd.exists("/lags/displacement_sq_sum")) {
    dsum = rd.read_dataset<double>("/lags/displacement_sum", L, 3);
    dsq = rd.read_dataset3x3("/lags/displacement_sq_sum", L);
    d.has_displacement = true;
  }

  hsize_t m = 0;
  const auto lag_index = rd.read_dataset<std::int32_t>("/counts/lag_index", -1, 0, &m);
  const auto M = static_cast<long long>(m);
  const auto from = rd.read_dataset<std::int32_t>("/counts/from", M, 0);
  const auto to = rd.read_dataset<std::int32_t>("/counts/to", M, 0);
  const auto shift = rd.read_dataset<std::int32_t>("/counts/shift", M, 3);
  const auto count = rd.read_dataset<std::uint64_t>("/counts/count", M, 0);

  if (offsets[0] != 0 || offsets[static_cast<std::size_t>(L)] != M)
    rd.fail("/lags/row_offset must start at 0 and end at the number of rows in /counts (" +
            std::to_string(M) + "), got " + std::to_string(offsets[0]) + " ... " +
            std::to_string(offsets[static_cast<std::size_t>(L)]));
  d.lags.resize(static_cast<std::size_t>(nlags));
  for (std::size_t i = 0; i < d.lags.size(); ++i) {
    LagCounts& lc = d.lags[i];
    lc.lag_steps = lag_steps[i];
    lc.n_origins = n_origins[i];
    if (d.has_levels) lc.level = levels[i];
    if (d.has_displacement) {
      for (int a = 0; a < 3; ++a) lc.displacement_sum[a] = dsum[3 * i + static_cast<std::size_t>(a)];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
          lc.displacement_sq_sum(a, b) = dsq[9 * i + static_cast<std::size_t>(3 * a + b)];
    }
    const std::int64_t begin = offsets[i], end = offsets[i + 1];
    if (begin > end)
      rd.fail("/lags/row_offset decreases at lag index " + std::to_string(i) + " (" +
              std::to_string(begin) + " > " + std::to_string(end) + ")");
    lc.rows.resize(static_cast<std::size_t>(end - begin));
    for (std::int64_t k = begin; k < end; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      if (lag_index[kk] != static_cast<std::int32_t>(i))
        rd.fail("/counts/lag_index[" + std::to_string(k) + "] = " + std::to_string(lag_index[kk]) +
                " but /lags/row_offset puts that row in lag index " + std::to_string(i));
      TransitionCount& r = lc.rows[static_cast<std::size_t>(k - begin)];
      r.from = from[kk];
      r.to = to[kk];
      r.shift = {shift[3 * kk], shift[3 * kk + 1], shift[3 * kk + 2]};
      r.count = count[kk];
    }
    if (lc.total() != totals[i])
      rd.fail("/lags/total_counts[" + std::to_string(i) + "] = " + std::to_string(totals[i]) +
              " but the rows of lag " + std::to_string(lc.lag_steps) + " steps sum to " +
              std::to_string(lc.total()));
  }
  if (rd.has_attribute("block_steps")) {
    d.block_steps = rd.read_number_attribute<std::int64_t>("block_steps");
    if (d.block_steps > 0) read_blocks(rd, d);
  }
  return d;
}

}  // namespace

// =============================================================================== public I/O

namespace {

/// Bob Jenkins' lookup3 hash ("hashlittle", bytes in little-endian order), the checksum HDF5
/// uses for its metadata (superblock version 2, object headers version 2, ...).
std::uint32_t lookup3(const unsigned char* k, std::size_t length, std::uint32_t initval) {
  auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefU + static_cast<std::uint32_t>(length) + initval;
  auto word = [&](const unsigned char* p, std::size_t n) {
    std::uint32_t w = 0;
    for (std::size_t i = 0; i < n; ++i) w += static_cast<std::uint32_t>(p[i]) << (8 * i);
    return w;
  };
  while (length > 12) {
    a += word(k, 4);
    b += word(k + 4, 4);
    c += word(k + 8, 4);
    a -= c; a ^= rot(c, 4);  c += b;
    b -= a; b ^= rot(a, 6);  a += c;
    c -= b; c ^= rot(b, 8);  b += a;
    a -= c; a ^= rot(c, 16); c += b;
    b -= a; b ^= rot(a, 19); a += c;
    c -= b; c ^= rot(b, 4);  b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  a += word(k, std::min<std::size_t>(length, 4));
  if (length > 4) b += word(k + 4, std::min<std::size_t>(length - 4, 4));
  if (length > 8) c += word(k + 8, length - 8);
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
  return c;
}

/// H5Fget_file_image copies a version 2/3 superblock with the checksum of an earlier state
/// (HDF5 1.10: only the checksum is stale, the fields are final); recompute it.
void fix_superblock_checksum(std::vector<unsigned char>& image) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (image.size() < 48 || !std::equal(sig, sig + 8, image.begin())) return;
  const unsigned version = image[8];
  if ((version != 2 && version != 3) || image[9] != 8 || image[10] != 8) return;
  const std::size_t fields = 12 + 4 * 8;  // signature .. root object header address
  const std::uint32_t sum = lookup3(image.data(), fields, 0);
  for (int i = 0; i < 4; ++i) image[fields + static_cast<std::size_t>(i)] = static_cast<unsigned char>(sum >> (8 * i));
}

/// Opens an image in memory read-only: throws H5Failure unless HDF5 accepts it.
void check_image_opens(const std::vector<unsigned char>& image) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create property list");
  if (H5Pset_fapl_core(fapl, std::size_t{1} << 20, 0) < 0 ||
      H5Pset_file_image(fapl, const_cast<unsigned char*>(image.data()), image.size()) < 0)
    h5fail("cannot set up the check of the file image");
  Handle file = checked(H5Fopen("ionmsm-image-check", H5F_ACC_RDONLY, fapl), H5Fclose,
                        "the file image built in memory does not open again");
}

/// The whole counts file, built in memory (HDF5's core driver without a backing store): HDF5
/// itself never touches the disk, so a full disk or a failing write cannot leave an HDF5 file
/// open (its shutdown would then crash), and every disk failure is a plain errno below.
std::vector<unsigned char> counts_file_image(const std::string& name, const CountsData& data) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create property list");
  if (H5Pset_fapl_core(fapl, std::size_t{1} << 20, 0) < 0) h5fail("cannot set up the core driver");
  // object headers and superblock of format 1.8 carry checksums of the metadata (attributes
  // included); readers since HDF5 1.8 read them
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
    h5fail("cannot set the file format bounds");
  Handle file = checked(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose,
                        "cannot create the file in memory");
  write_contents(file, data);
  if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) h5fail("cannot flush the file image");
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  if (size <= 0) h5fail("cannot get the size of the file image");
  std::vector<unsigned char> image(static_cast<std::size_t>(size));
  if (H5Fget_file_image(file, image.data(), image.size()) != size)
    h5fail("cannot copy the file image");
  if (file.close() < 0) h5fail("cannot close the file image");
  fix_superblock_checksum(image);
  check_image_opens(image);
  return image;
}

/// Writes bytes to a new file `tmp` and makes them durable (fsync) before returning; "" on
/// success, else the failing step and errno's text. Closes the descriptor on every path.
std::string write_whole_file(const std::string& tmp, const std::vector<unsigned char>& bytes) {
  const std::string name = "temporary file '" + tmp + "'";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return "cannot create " + name + ": " + std::strerror(errno);
  std::size_t done = 0;
  std::string err;
  while (done < bytes.size() && err.empty()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      err = "cannot write " + name + " (" + std::to_string(done) + " of " +
            std::to_string(bytes.size()) + " bytes written): " + std::strerror(n < 0 ? errno : EIO);
    else
      done += static_cast<std::size_t>(n);
  }
  // a full disk or quota may only be reported when the data reach the disk (NFS, Lustre)
  if (err.empty() && ::fsync(fd) != 0) err = "cannot sync " + name + ": " + std::strerror(errno);
  if (::close(fd) != 0 && err.empty()) err = "cannot close " + name + ": " + std::strerror(errno);
  return err;
}

}  // namespace

void write_counts_file(const std::string& path, const CountsData& data) {
  data.validate();
  QuietHdf5 quiet;
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  auto fail = [&](const std::string& reason) -> void {
    ::unlink(tmp.c_str());  // a file only: never a directory that happens to have the name
    throw std::runtime_error("cannot write counts file '" + path + "': " + reason);
  };
  namespace fs = std::filesystem;
  {
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw std::runtime_error("cannot write counts file '" + path + "': directory '" +
                               parent.string() + "' " +
                               (fs::exists(parent, ec) ? "is not a directory" : "does not exist"));
    if (fs::is_directory(fs::path(path), ec))
      throw std::runtime_error("cannot write counts file '" + path + "': it is a directory");
  }
  std::vector<unsigned char> image;
  try {
    image = counts_file_image(tmp, data);
  } catch (const H5Failure& e) {
    throw std::runtime_error("cannot write counts file '" + path + "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("cannot write counts file '" + path + "': out of memory");
  }
  const std::string err = write_whole_file(tmp, image);
  if (!err.empty()) fail(err);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    fail("cannot rename '" + tmp + "' onto it: " + std::strerror(e));
  }
}

CountsData read_counts_file(const std::string& path) {
  namespace fs = std::filesystem;
  QuietHdf5 quiet;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw std::runtime_error("counts file '" + path + "' does not exist");
  if (fs::is_directory(st))
    throw std::runtime_error("'" + path + "' is a directory, not a counts file");
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
      const int err = errno;
      throw std::runtime_error("cannot read counts file '" + path + "': " + std::strerror(err));
    }
    std::fclose(f);
  }
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is_h5 <= 0) throw std::runtime_error("'" + path + "' is not an HDF5 file");

  Handle fapl;
  try {
    fapl = file_access_plist();
  } catch (const H5Failure& e) {
    throw std::runtime_error("cannot open counts file '" + path + "': " + e.what());
  }
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (!file.valid()) {
    if (hdf5_checksum_error()) {
      H5Eclear2(H5E_DEFAULT);
      throw std::runtime_error("counts file '" + path + "' is damaged: the checksum of its "
                               "metadata does not match the stored bytes (the file changed "
                               "after it was written; restore it from a copy or rerun)");
    }
    const std::string detail = hdf5_error_detail();
    H5Eclear2(H5E_DEFAULT);
    throw std::runtime_error("cannot open counts file '" + path + "'" +
                             (detail.empty() ? std::string() : " (HDF5: " + detail + ")"));
  }
  Reader rd(path, file);

  const std::string not_ours = "'" + path + "' is not an ionmsm counts file (no format tag '" +
                               std::string(kCountsFormatTag) + "')";
  std::string tag;
  try {
    tag = rd.read_string_attribute("format");
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("damaged") != std::string::npos) throw;
    throw std::runtime_error(not_ours);
  }
  if (tag != kCountsFormatTag) throw std::runtime_error(not_ours);

  const auto version = rd.read_number_attribute<std::int64_t>("format_version");
  if (version != kCountsFormatVersion)
    throw std::runtime_error("'" + path + "' has counts format version " +
                             std::to_string(version) + "; this ionmsm reads version " +
                             std::to_string(kCountsFormatVersion));

  CountsData data = read_contents(rd);
  try {
    data.validate();
  } catch (const std::invalid_argument& e) {
    rd.fail(e.what());
  }
  return data;
}

}  // namespace ionmsm
