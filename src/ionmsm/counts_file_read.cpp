// Reading the counts file (HDF5; schema: docs/file-format.md): every attribute and dataset
// is checked for type and shape, and every failure names the file. Uses the HDF5 C API only.
#include <hdf5.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ionmsm/counts_file.hpp"
#include "ionmsm/hdf5_util.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm {

namespace {

using namespace hdf5_util;

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
    if (!read_string_value(attr, type, out))
      h5fail_here(std::string("cannot read attribute '") + name + "'");
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

/// Root attributes (the optional ones of newer format-1 writers only when present).
void read_root_attributes(const Reader& rd, CountsData& d) {
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
  if (rd.has_attribute("history")) {
    const std::string name = rd.read_string_attribute("history");
    const auto mode = history_mode_from_name(name);
    if (!mode) rd.fail("history must be " + history_mode_choices() + ", got '" + name + "'");
    d.history = HistoryConfig{*mode, 0};
    if (rd.has_attribute("history_m"))
      d.history->m = rd.read_number_attribute<std::int64_t>("history_m");
  }
  if (rd.has_attribute("doubles_per_atom"))
    d.doubles_per_atom = rd.read_number_attribute<std::int64_t>("doubles_per_atom");
  if (rd.has_attribute("assign")) {
    const std::string name = rd.read_string_attribute("assign");
    d.assign = assign_mode_from_name(name);
    if (!d.assign) rd.fail("assign must be " + assign_mode_choices() + ", got '" + name + "'");
  }
  if (rd.has_attribute("core_radius")) d.core_radius = rd.read_number_attribute<double>("core_radius");
  if (rd.has_attribute("n_outside_core"))
    d.n_outside_core = rd.read_number_attribute<std::uint64_t>("n_outside_core");
}

void read_box_and_sites(const Reader& rd, CountsData& d) {
  const auto origin = rd.read_dataset<double>("/box/origin", 3, 0);
  const auto h = rd.read_dataset<double>("/box/h", 3, 3);
  for (int i = 0; i < 3; ++i) {
    d.box_origin[i] = origin[static_cast<std::size_t>(i)];
    for (int j = 0; j < 3; ++j) d.box_h(i, j) = h[static_cast<std::size_t>(3 * i + j)];
  }
  hsize_t n = 0;
  const auto frac = rd.read_dataset<double>("/sites/fractional", -1, 3, &n);
  d.site_fractional.resize(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < d.site_fractional.size(); ++i)
    d.site_fractional[i] = Eigen::Vector3d(frac[3 * i], frac[3 * i + 1], frac[3 * i + 2]);
  d.occupancy = rd.read_dataset<std::uint64_t>("/sites/occupancy", static_cast<long long>(n), 0);
  if (rd.exists("/sites/labels"))
    d.site_labels = rd.read_string_dataset("/sites/labels", static_cast<long long>(n));
}

/// The /counts columns of all lags.
struct CountColumns {
  std::vector<std::int32_t> lag_index, from, to, shift;
  std::vector<std::uint64_t> count;
  long long rows = 0;
};

CountColumns read_count_columns(const Reader& rd) {
  CountColumns c;
  hsize_t m = 0;
  c.lag_index = rd.read_dataset<std::int32_t>("/counts/lag_index", -1, 0, &m);
  c.rows = static_cast<long long>(m);
  c.from = rd.read_dataset<std::int32_t>("/counts/from", c.rows, 0);
  c.to = rd.read_dataset<std::int32_t>("/counts/to", c.rows, 0);
  c.shift = rd.read_dataset<std::int32_t>("/counts/shift", c.rows, 3);
  c.count = rd.read_dataset<std::uint64_t>("/counts/count", c.rows, 0);
  return c;
}

/// Rows [begin, end) of /counts into lag i; each must carry lag_index i.
void read_lag_rows(const Reader& rd, const CountColumns& c, std::size_t i, std::int64_t begin,
                   std::int64_t end, LagCounts& lc) {
  if (begin > end)
    rd.fail("/lags/row_offset decreases at lag index " + std::to_string(i) + " (" +
            std::to_string(begin) + " > " + std::to_string(end) + ")");
  lc.rows.resize(static_cast<std::size_t>(end - begin));
  for (std::int64_t k = begin; k < end; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    if (c.lag_index[kk] != static_cast<std::int32_t>(i))
      rd.fail("/counts/lag_index[" + std::to_string(k) + "] = " + std::to_string(c.lag_index[kk]) +
              " but /lags/row_offset puts that row in lag index " + std::to_string(i));
    TransitionCount& r = lc.rows[static_cast<std::size_t>(k - begin)];
    r.from = c.from[kk];
    r.to = c.to[kk];
    r.shift = {c.shift[3 * kk], c.shift[3 * kk + 1], c.shift[3 * kk + 2]};
    r.count = c.count[kk];
  }
}

/// /lags and /counts: per lag its steps, origins, optional level and displacement sums, and
/// its rows; the stored total of each lag must match its rows.
void read_lags(const Reader& rd, CountsData& d) {
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
  const CountColumns c = read_count_columns(rd);
  if (offsets[0] != 0 || offsets[static_cast<std::size_t>(L)] != c.rows)
    rd.fail("/lags/row_offset must start at 0 and end at the number of rows in /counts (" +
            std::to_string(c.rows) + "), got " + std::to_string(offsets[0]) + " ... " +
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
    read_lag_rows(rd, c, i, offsets[i], offsets[i + 1], lc);
    if (lc.total() != totals[i])
      rd.fail("/lags/total_counts[" + std::to_string(i) + "] = " + std::to_string(totals[i]) +
              " but the rows of lag " + std::to_string(lc.lag_steps) + " steps sum to " +
              std::to_string(lc.total()));
  }
}

CountsData read_contents(const Reader& rd) {
  CountsData d;
  read_root_attributes(rd, d);
  read_box_and_sites(rd, d);
  read_lags(rd, d);
  if (rd.has_attribute("block_steps")) {
    d.block_steps = rd.read_number_attribute<std::int64_t>("block_steps");
    if (d.block_steps > 0) read_blocks(rd, d);
  }
  return d;
}

}  // namespace

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
