// Tests of the counts file (HDF5), the canonical CSV and the units helper.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <thread>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

// The HDF5 include directory is private to the core library; Debian's serial flavour also lives
// under hdf5/serial/ (its internal includes are quoted, so they resolve next to hdf5.h).
#if __has_include(<hdf5.h>)
#include <hdf5.h>
#elif __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#error "hdf5.h not found"
#endif

#include "ionmsm/counts_file.hpp"
#include "ionmsm/version.hpp"

namespace fs = std::filesystem;
using namespace ionmsm;

namespace {

// ----------------------------------------------------------------------------- helpers

/// Runs fn, expects an exception of type E whose message contains every one of `parts`.
template <class E>
::testing::AssertionResult ThrowsWith(const std::function<void()>& fn,
                                      const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      if (msg.find(p) == std::string::npos)
        return ::testing::AssertionFailure()
               << "message \"" << msg << "\" does not contain \"" << p << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong exception type, message: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception thrown";
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "ionmsm_counts_file_" + std::to_string(::getpid()) + "_" +
                       std::to_string(counter++);
    if (info) name += std::string("_") + info->name();
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  fs::path path_;
};

CountsData make_counts(std::uint64_t seed, std::size_t nsites, std::size_t nlags, bool labels,
                       std::size_t rows_per_lag = 40) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  CountsData d;
  d.ionmsm_version = kVersion;
  d.lammps_version = "4 Feb 2025";
  d.command = "fix hop li msm 10 sites.txt lags 10 20 50 file counts.h5";
  d.units = "metal";
  d.timestep = 0.002;
  d.timestep_ps = 0.002;
  d.nevery = 10;
  d.n_samples = 1001;
  d.first_step = 100;
  d.last_step = d.first_step + d.nevery * static_cast<std::int64_t>(d.n_samples - 1);
  d.n_atoms = 57;
  d.box_origin = Eigen::Vector3d(-1.5 + unit(rng), 0.25 * unit(rng), -unit(rng));
  d.box_h << 10.0 + unit(rng), 0.7 * unit(rng), -0.4 * unit(rng),  //
      0.0, 9.0 + unit(rng), 0.3 * unit(rng),                      //
      0.0, 0.0, 11.0 + unit(rng);
  for (std::size_t i = 0; i < nsites; ++i) {
    d.site_fractional.emplace_back(unit(rng), unit(rng), unit(rng));
    d.occupancy.push_back(rng() % 7 == 0 ? 0 : (rng() >> 20));  // many above 2^32
  }
  if (labels) {
    for (std::size_t i = 0; i < nsites; ++i)
      d.site_labels.push_back(i % 5 == 4 ? std::string() : "Li" + std::to_string(i % 3));
  }
  std::uniform_int_distribution<int> site(0, static_cast<int>(nsites) - 1);
  std::uniform_int_distribution<int> img(-2, 2);
  for (std::size_t l = 0; l < nlags; ++l) {
    LagCounts lc;
    lc.lag_steps = d.nevery * static_cast<std::int64_t>(l * l + 1);
    lc.n_origins = d.n_samples - static_cast<std::uint64_t>(lc.lag_steps / d.nevery);
    if (l != 1 && nsites > 0) {  // lag index 1 has no rows
      std::set<std::tuple<SiteIndex, SiteIndex, Image>> keys;  // (from, to, shift), sorted
      for (std::size_t k = 0; k < rows_per_lag; ++k) {
        const SiteIndex from = site(rng);
        const SiteIndex to = k % 3 == 0 ? from : site(rng);
        keys.insert({from, to, Image{img(rng), img(rng), img(rng)}});
      }
      for (const auto& [from, to, shift] : keys) {
        TransitionCount r;
        r.from = from;
        r.to = to;
        r.shift = shift;
        r.count = 1 + rng() % (std::uint64_t{1} << 40);
        lc.rows.push_back(r);
      }
    }
    d.lags.push_back(lc);
  }
  d.validate();
  return d;
}

void expect_same(const CountsData& a, const CountsData& b) {
  EXPECT_EQ(a.ionmsm_version, b.ionmsm_version);
  EXPECT_EQ(a.lammps_version, b.lammps_version);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.units, b.units);
  EXPECT_EQ(a.timestep, b.timestep);
  EXPECT_EQ(a.timestep_ps, b.timestep_ps);
  EXPECT_EQ(a.nevery, b.nevery);
  EXPECT_EQ(a.first_step, b.first_step);
  EXPECT_EQ(a.last_step, b.last_step);
  EXPECT_EQ(a.n_samples, b.n_samples);
  EXPECT_EQ(a.n_atoms, b.n_atoms);
  EXPECT_EQ(a.box_origin, b.box_origin);
  EXPECT_EQ(a.box_h, b.box_h);
  ASSERT_EQ(a.site_fractional.size(), b.site_fractional.size());
  for (std::size_t i = 0; i < a.site_fractional.size(); ++i)
    ASSERT_EQ(a.site_fractional[i], b.site_fractional[i]) << "site " << i;
  EXPECT_EQ(a.site_labels, b.site_labels);
  EXPECT_EQ(a.occupancy, b.occupancy);
  ASSERT_EQ(a.lags.size(), b.lags.size());
  for (std::size_t l = 0; l < a.lags.size(); ++l) {
    EXPECT_EQ(a.lags[l].lag_steps, b.lags[l].lag_steps);
    EXPECT_EQ(a.lags[l].n_origins, b.lags[l].n_origins);
    ASSERT_EQ(a.lags[l].rows.size(), b.lags[l].rows.size()) << "lag " << l;
    for (std::size_t k = 0; k < a.lags[l].rows.size(); ++k) {
      const auto& x = a.lags[l].rows[k];
      const auto& y = b.lags[l].rows[k];
      ASSERT_TRUE(x.from == y.from && x.to == y.to && x.shift == y.shift && x.count == y.count)
          << "lag " << l << " row " << k;
    }
  }
}

/// Opens a written file with the HDF5 API to tamper with it.
class RawFile {
 public:
  explicit RawFile(const std::string& path, bool create = false) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    id_ = create ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                 : H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(id_, 0) << path;
  }
  ~RawFile() {
    if (id_ >= 0) H5Fclose(id_);
  }
  hid_t id() const { return id_; }
  void set_int_attr(const char* name, long long value) {
    if (H5Aexists(id_, name) > 0) {
      ASSERT_GE(H5Adelete(id_, name), 0);
    }
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(id_, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(attr, 0);
    ASSERT_GE(H5Awrite(attr, H5T_NATIVE_LLONG, &value), 0);
    H5Aclose(attr);
    H5Sclose(space);
  }
  void set_string_attr(const char* name, const std::string& value) {
    if (H5Aexists(id_, name) > 0) {
      ASSERT_GE(H5Adelete(id_, name), 0);
    }
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size() + 1);  // fixed length, as other tools may write it
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(id_, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(attr, 0);
    ASSERT_GE(H5Awrite(attr, type, value.c_str()), 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  }
  void replace_int32_dataset(const char* name, const std::vector<std::int32_t>& v) {
    ASSERT_GE(H5Ldelete(id_, name, H5P_DEFAULT), 0);
    hsize_t dims[1] = {v.size()};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t dset = H5Dcreate2(id_, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    ASSERT_GE(dset, 0);
    if (!v.empty()) {
      ASSERT_GE(H5Dwrite(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
    }
    H5Dclose(dset);
    H5Sclose(space);
  }

 private:
  hid_t id_ = -1;
};

std::string csv_of(const CountsData& d, std::int64_t lag = -1) {
  std::ostringstream os;
  write_counts_csv(os, d, lag);
  return os.str();
}

}  // namespace

// ============================================================================= round trip

TEST(CountsFileRoundTrip, RandomTriclinicWithLabels) {
  TempDir dir;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const CountsData d = make_counts(seed, 25 + seed * 10, 4, /*labels=*/true);
    const std::string path = dir.file("counts_" + std::to_string(seed) + ".h5");
    write_counts_file(path, d);
    const CountsData r = read_counts_file(path);
    expect_same(d, r);
    EXPECT_TRUE(r.lags[1].rows.empty());
    bool big = false;
    for (const auto& row : r.lags[0].rows) big = big || row.count > (std::uint64_t{1} << 32);
    EXPECT_TRUE(big);
  }
}

TEST(CountsFileRoundTrip, WithoutLabels) {
  TempDir dir;
  const CountsData d = make_counts(11, 30, 3, /*labels=*/false);
  write_counts_file(dir.file("c.h5"), d);
  const CountsData r = read_counts_file(dir.file("c.h5"));
  expect_same(d, r);
  EXPECT_TRUE(r.site_labels.empty());
}

TEST(CountsFileRoundTrip, AllLabelsEmptyReadBackAsNoLabels) {
  TempDir dir;
  CountsData d = make_counts(12, 10, 2, /*labels=*/false);
  d.site_labels.assign(d.nsites(), "");
  write_counts_file(dir.file("c.h5"), d);
  const CountsData r = read_counts_file(dir.file("c.h5"));
  EXPECT_TRUE(r.site_labels.empty());
  RawFile raw(dir.file("c.h5"));
  EXPECT_EQ(H5Lexists(raw.id(), "/sites/labels", H5P_DEFAULT), 0);
}

TEST(CountsFileRoundTrip, EmptyCountsAndNoLags) {
  TempDir dir;
  CountsData d = make_counts(13, 8, 3, true);
  for (auto& lc : d.lags) lc.rows.clear();  // M = 0
  write_counts_file(dir.file("empty_rows.h5"), d);
  expect_same(d, read_counts_file(dir.file("empty_rows.h5")));

  d.lags.clear();  // L = 0
  write_counts_file(dir.file("no_lags.h5"), d);
  const CountsData r = read_counts_file(dir.file("no_lags.h5"));
  expect_same(d, r);
  EXPECT_TRUE(r.lags.empty());
}

TEST(CountsFileRoundTrip, NoSamplesAndLjUnits) {
  TempDir dir;
  CountsData d;
  d.units = "lj";
  d.timestep = 0.005;
  d.timestep_ps = 0.0;
  d.nevery = 1;
  d.site_fractional = {Eigen::Vector3d(0.5, 0.5, 0.5)};
  d.occupancy = {0};
  write_counts_file(dir.file("c.h5"), d);
  expect_same(d, read_counts_file(dir.file("c.h5")));
}

TEST(CountsFileRoundTrip, LargeCompressedDatasets) {
  TempDir dir;
  // above the compression threshold for sites, labels and count rows
  const CountsData d = make_counts(14, 120000, 3, true, 90000);
  write_counts_file(dir.file("big.h5"), d);
  expect_same(d, read_counts_file(dir.file("big.h5")));
}

TEST(CountsFileRoundTrip, LayoutMatchesSchema) {
  TempDir dir;
  const CountsData d = make_counts(15, 20, 3, true);
  const std::string path = dir.file("c.h5");
  write_counts_file(path, d);
  RawFile raw(path);
  // h is row-major with columns = cell vectors
  double h[3][3];
  hid_t ds = H5Dopen2(raw.id(), "/box/h", H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  ASSERT_GE(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, h), 0);
  H5Dclose(ds);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(h[i][j], d.box_h(i, j));
  EXPECT_EQ(h[1][0], 0.0);  // a = (xprd, 0, 0)
  // cartesian = origin + H f
  const auto cart = d.site_cartesian();
  std::vector<double> c(3 * d.nsites());
  ds = H5Dopen2(raw.id(), "/sites/cartesian", H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  ASSERT_GE(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data()), 0);
  H5Dclose(ds);
  for (std::size_t i = 0; i < d.nsites(); ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(c[3 * i + k], cart[i][k]);
  // row_offset and lag_index
  std::vector<std::int64_t> off(d.lags.size() + 1);
  ds = H5Dopen2(raw.id(), "/lags/row_offset", H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  ASSERT_GE(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off.data()), 0);
  H5Dclose(ds);
  std::int64_t sum = 0;
  for (std::size_t l = 0; l < d.lags.size(); ++l) {
    EXPECT_EQ(off[l], sum);
    sum += static_cast<std::int64_t>(d.lags[l].rows.size());
  }
  EXPECT_EQ(off.back(), sum);
  // format attributes
  int version = 0;
  hid_t attr = H5Aopen(raw.id(), "format_version", H5P_DEFAULT);
  ASSERT_GE(attr, 0);
  ASSERT_GE(H5Aread(attr, H5T_NATIVE_INT, &version), 0);
  H5Aclose(attr);
  EXPECT_EQ(version, kCountsFormatVersion);
}

// ============================================================================= atomic write

TEST(CountsFileAtomicWrite, ReplacesExistingFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("counts.h5");
  const CountsData a = make_counts(21, 10, 2, false);
  const CountsData b = make_counts(22, 17, 3, true);
  write_counts_file(path, a);
  write_counts_file(path, b);
  expect_same(b, read_counts_file(path));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"counts.h5"});
}

TEST(CountsFileRoundTrip, SameDataGivesTheSameBytes) {
  // HDF5 stamps objects with the time (1 s resolution) unless told not to: two writes more
  // than a second apart must still give byte-identical files, so outputs compare with cmp.
  TempDir dir;
  const CountsData d = make_counts(23, 40, 3, /*labels=*/true);
  write_counts_file(dir.file("first.h5"), d);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_counts_file(dir.file("second.h5"), d);
  const auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::string first = bytes(dir.file("first.h5"));
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(first == bytes(dir.file("second.h5")));
}

TEST(CountsFileAtomicWrite, ReplacesNonHdf5File) {
  TempDir dir;
  const std::string path = dir.file("counts.h5");
  std::ofstream(path) << "old contents\n";
  const CountsData a = make_counts(23, 10, 2, false);
  write_counts_file(path, a);
  expect_same(a, read_counts_file(path));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"counts.h5"});
}

TEST(CountsFileAtomicWrite, MissingDirectoryThrowsNamingPath) {
  TempDir dir;
  const std::string path = dir.file("no_such_dir/counts.h5");
  const CountsData d = make_counts(24, 5, 1, false);
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { write_counts_file(path, d); },
                                             {"cannot write counts file '" + path + "'",
                                              "does not exist"}));
  EXPECT_TRUE(dir.entries().empty());
  // the "directory" is a regular file
  std::ofstream(dir.file("plain")) << "x";
  const std::string under_file = dir.file("plain/counts.h5");
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { write_counts_file(under_file, d); },
                                             {"cannot write counts file '" + under_file + "'",
                                              "is not a directory"}));
}

TEST(CountsFileAtomicWrite, UnwritableDirectoryRemovesNothingAndThrows) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  TempDir dir;
  fs::create_directory(dir.path() / "ro");
  fs::permissions(dir.path() / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = dir.file("ro/counts.h5");
  const CountsData d = make_counts(25, 5, 1, false);
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { write_counts_file(path, d); },
                                             {"cannot write counts file '" + path + "'"}));
  fs::permissions(dir.path() / "ro", fs::perms::owner_all);
  EXPECT_TRUE(fs::is_empty(dir.path() / "ro"));
}

TEST(CountsFileAtomicWrite, TemporaryCannotBeCreated) {
  TempDir dir;
  const std::string path = dir.file("counts.h5");
  // a directory squats on the temporary's name, so creating the temporary fails (even as root)
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  fs::create_directory(tmp);
  std::ofstream(tmp + "/keep") << "x";
  const CountsData d = make_counts(27, 5, 1, false);
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { write_counts_file(path, d); },
      {"cannot write counts file '" + path + "': cannot create temporary file '" + tmp + "'"}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // no HDF5 error stack printed
  EXPECT_TRUE(fs::exists(tmp + "/keep"));                    // nothing of the user's removed
  EXPECT_FALSE(fs::exists(path));
}

TEST(CountsFileAtomicWrite, InvalidDataIsRejectedBeforeWriting) {
  TempDir dir;
  CountsData d = make_counts(26, 5, 1, false);
  d.occupancy.pop_back();
  EXPECT_THROW(write_counts_file(dir.file("c.h5"), d), std::invalid_argument);
  EXPECT_TRUE(dir.entries().empty());
}

// ============================================================================= read errors

TEST(CountsFileReadErrors, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nope.h5");
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {"counts file '" + path + "' does not exist"}));
}

TEST(CountsFileReadErrors, NotHdf5) {
  TempDir dir;
  const std::string path = dir.file("text.h5");
  std::ofstream(path) << "lag_steps,from,to\n1,2,3\n";
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {"'" + path + "' is not an HDF5 file"}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // no HDF5 error stack printed

  const std::string empty = dir.file("empty.h5");
  std::ofstream{empty};
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(empty); },
                                             {"'" + empty + "' is not an HDF5 file"}));
}

TEST(CountsFileReadErrors, Hdf5WithoutTag) {
  TempDir dir;
  const std::string path = dir.file("other.h5");
  {
    RawFile raw(path, /*create=*/true);
    hid_t g = H5Gcreate2(raw.id(), "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
  }
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { read_counts_file(path); },
      {"'" + path + "' is not an ionmsm counts file (no format tag 'ionmsm-counts')"}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(CountsFileReadErrors, WrongTag) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_counts_file(path, make_counts(31, 5, 2, false));
  RawFile(path).set_string_attr("format", "ionmsm-model");
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { read_counts_file(path); },
      {"'" + path + "' is not an ionmsm counts file (no format tag 'ionmsm-counts')"}));
  // a fixed-length tag written by another tool is accepted
  RawFile(path).set_string_attr("format", "ionmsm-counts");
  EXPECT_NO_THROW(read_counts_file(path));
}

TEST(CountsFileReadErrors, WrongVersion) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_counts_file(path, make_counts(32, 5, 2, false));
  RawFile(path).set_int_attr("format_version", 2);
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { read_counts_file(path); },
      {"'" + path + "' has counts format version 2; this ionmsm reads version 1"}));
}

TEST(CountsFileReadErrors, Hdf5FileWrittenByHandWithVersion2) {
  TempDir dir;
  const std::string path = dir.file("v2.h5");
  {
    RawFile raw(path, /*create=*/true);
    raw.set_string_attr("format", "ionmsm-counts");
    raw.set_int_attr("format_version", 2);
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { read_counts_file(path); },
      {"'" + path + "' has counts format version 2; this ionmsm reads version 1"}));
}

TEST(CountsFileReadErrors, MissingDatasetOrAttribute) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_counts_file(path, make_counts(33, 5, 2, false));
  {
    RawFile raw(path);
    ASSERT_GE(H5Ldelete(raw.id(), "/counts/count", H5P_DEFAULT), 0);
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "missing dataset '/counts/count'"}));
  {
    RawFile raw(path);
    ASSERT_GE(H5Ldelete(raw.id(), "/sites", H5P_DEFAULT), 0);
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "missing dataset '/sites/fractional'"}));
  write_counts_file(path, make_counts(33, 5, 2, false));
  {
    RawFile raw(path);
    ASSERT_GE(H5Adelete(raw.id(), "nevery"), 0);
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "missing root attribute 'nevery'"}));
}

TEST(CountsFileReadErrors, InconsistentSizes) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  const CountsData d = make_counts(34, 6, 2, false);
  write_counts_file(path, d);
  {
    RawFile raw(path);
    raw.replace_int32_dataset("/counts/to", std::vector<std::int32_t>(3, 0));
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "dataset '/counts/to' has shape (3)"}));
}

TEST(CountsFileReadErrors, InvalidContents) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  const CountsData d = make_counts(35, 6, 3, false);
  write_counts_file(path, d);
  std::size_t m = 0;
  for (const auto& lc : d.lags) m += lc.rows.size();
  {
    RawFile raw(path);
    raw.replace_int32_dataset("/counts/from", std::vector<std::int32_t>(m, 99));
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "outside [0, 6)"}));
  write_counts_file(path, d);
  {
    RawFile raw(path);
    raw.replace_int32_dataset("/counts/lag_index", std::vector<std::int32_t>(m, 0));
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "lag_index"}));
}

// ============================================================================= validation

TEST(CountsFileValidate, RejectsInconsistentData) {
  const CountsData good = make_counts(41, 8, 3, true);
  EXPECT_NO_THROW(good.validate());
  auto rejects = [&](const std::function<void(CountsData&)>& change, const std::string& what) {
    CountsData d = good;
    change(d);
    return ThrowsWith<std::invalid_argument>([&] { d.validate(); }, {what});
  };
  EXPECT_TRUE(rejects([](CountsData& d) { d.occupancy.pop_back(); }, "occupancy"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.site_labels.pop_back(); }, "site_labels"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.nevery = 0; }, "nevery"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[2].lag_steps = d.lags[1].lag_steps; },
                      "strictly increasing"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].lag_steps = 0; }, "positive"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].lag_steps = 15; }, "multiple of nevery"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].rows[0].count = 0; }, "count is 0"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].rows[0].to = 8; }, "outside [0, 8)"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].rows[0].from = -1; }, "outside"));
  EXPECT_TRUE(rejects([](CountsData& d) { std::swap(d.lags[0].rows[0], d.lags[0].rows[1]); },
                      "sorted"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].rows[1] = d.lags[0].rows[0]; }, "sorted"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.lags[0].n_origins = d.n_samples + 1; },
                      "n_origins"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.timestep_ps = 2.0; }, "timestep_ps"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.units = "furlongs"; }, "furlongs"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.box_h(2, 2) = 0.0; }, "singular"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.site_fractional[3][1] = NAN; }, "site 3"));
  EXPECT_TRUE(rejects([](CountsData& d) { d.last_step = d.first_step - 1; }, "last_step"));
}

TEST(CountsFileValidate, HelpersTotalFindLagCartesian) {
  CountsData d = make_counts(42, 6, 3, false);
  std::uint64_t sum = 0;
  for (const auto& r : d.lags[0].rows) sum += r.count;
  EXPECT_EQ(d.lags[0].total(), sum);
  EXPECT_EQ(d.lags[1].total(), 0u);
  EXPECT_EQ(d.find_lag(d.lags[2].lag_steps), 2);
  EXPECT_EQ(d.find_lag(7), -1);
  const auto cart = d.site_cartesian();
  ASSERT_EQ(cart.size(), d.nsites());
  for (std::size_t i = 0; i < cart.size(); ++i)
    EXPECT_TRUE(cart[i].isApprox(d.box_origin + d.box_h * d.site_fractional[i], 1e-14));
}

// ============================================================================= CSV

TEST(CountsFileCsv, HeaderSortingAndLagFilter) {
  CountsData d;
  d.units = "real";
  d.timestep = 1.0;
  d.timestep_ps = 1e-3;
  d.nevery = 5;
  d.n_samples = 100;
  d.first_step = 0;
  d.last_step = 495;
  d.site_fractional.assign(3, Eigen::Vector3d::Zero());
  d.occupancy.assign(3, 1);
  LagCounts a;
  a.lag_steps = 5;
  a.n_origins = 99;
  a.rows = {{0, 0, {0, 0, 0}, 10}, {0, 1, {-1, 0, 0}, 2}, {0, 1, {0, 0, 1}, 3},
            {2, 1, {0, 0, 0}, 5000000000ull}};
  LagCounts b;
  b.lag_steps = 10;
  b.n_origins = 98;
  b.rows = {{1, 2, {0, -1, 0}, 7}};
  LagCounts e;
  e.lag_steps = 20;
  e.n_origins = 96;
  d.lags = {a, b, e};
  d.validate();

  const std::string header = "lag_steps,from,to,shift_x,shift_y,shift_z,count\n";
  EXPECT_EQ(csv_of(d), header +
                           "5,0,0,0,0,0,10\n"
                           "5,0,1,-1,0,0,2\n"
                           "5,0,1,0,0,1,3\n"
                           "5,2,1,0,0,0,5000000000\n"
                           "10,1,2,0,-1,0,7\n");
  EXPECT_EQ(csv_of(d, 10), header + "10,1,2,0,-1,0,7\n");
  EXPECT_EQ(csv_of(d, 20), header);  // lag present but without rows
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>([&] { csv_of(d, 15); },
                                                {"lag 15 steps", "5, 10, 20"}));
  EXPECT_THROW(csv_of(d, 0), std::invalid_argument);
}

TEST(CountsFileCsv, SameAfterRoundTrip) {
  TempDir dir;
  const CountsData d = make_counts(51, 12, 4, true);
  write_counts_file(dir.file("c.h5"), d);
  EXPECT_EQ(csv_of(d), csv_of(read_counts_file(dir.file("c.h5"))));
}

// ======================================================= optional additions (format version 1)

TEST(CountsFileOptional, HistoryAssignLevelsAndDisplacementRoundTrip) {
  TempDir dir;
  CountsData d = make_counts(5, 20, 3, /*labels=*/false);
  d.history = HistoryConfig::multitau(16);
  d.doubles_per_atom = 229;
  d.assign = AssignMode::Core;
  d.core_radius = 0.75;
  d.n_outside_core = 3;
  d.has_levels = true;
  d.has_displacement = true;
  for (std::size_t i = 0; i < d.lags.size(); ++i) {
    d.lags[i].level = 0;
    d.lags[i].displacement_sum = Eigen::Vector3d(1.0 + i, -2.5, 1e-3);
    Eigen::Matrix3d m;
    m << 1, 2, 3, 2, 5, 6, 3, 6, 9.5 + static_cast<double>(i);
    d.lags[i].displacement_sq_sum = m;
  }
  const std::string path = dir.file("opt.h5");
  write_counts_file(path, d);
  const CountsData r = read_counts_file(path);
  expect_same(d, r);
  ASSERT_TRUE(r.history.has_value());
  EXPECT_EQ(r.history->mode, HistoryConfig::Mode::MultiTau);
  EXPECT_EQ(r.history->m, 16);
  EXPECT_EQ(r.doubles_per_atom, 229);
  EXPECT_EQ(r.assign, AssignMode::Core);
  EXPECT_EQ(r.core_radius, 0.75);
  EXPECT_EQ(r.n_outside_core, 3u);
  EXPECT_TRUE(r.has_levels);
  ASSERT_TRUE(r.has_displacement);
  for (std::size_t i = 0; i < d.lags.size(); ++i) {
    EXPECT_EQ(r.lags[i].displacement_sum, d.lags[i].displacement_sum);
    EXPECT_EQ(r.lags[i].displacement_sq_sum, d.lags[i].displacement_sq_sum);
  }
  // h5py view: (L, 3) and (L, 3, 3)
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t ds = H5Dopen2(f, "/lags/displacement_sq_sum", H5P_DEFAULT);
  hid_t sp = H5Dget_space(ds);
  EXPECT_EQ(H5Sget_simple_extent_ndims(sp), 3);
  H5Sclose(sp);
  H5Dclose(ds);
  EXPECT_GT(H5Aexists(f, "fraction_outside_core"), 0);
  H5Fclose(f);
}

TEST(CountsFileOptional, FilesWithoutAdditionsReadWithFlagsOff) {
  TempDir dir;
  const CountsData d = make_counts(6, 10, 2, /*labels=*/false);
  write_counts_file(dir.file("plain.h5"), d);
  const CountsData r = read_counts_file(dir.file("plain.h5"));
  EXPECT_FALSE(r.has_displacement);
  EXPECT_FALSE(r.has_levels);
  EXPECT_FALSE(r.history.has_value());
  EXPECT_FALSE(r.assign.has_value());
  EXPECT_EQ(r.doubles_per_atom, 0);
}

TEST(CountsFileOptional, UnknownModeNamesAreRejectedNamingTheAttribute) {
  TempDir dir;
  const std::string path = dir.file("modes.h5");
  CountsData d = make_counts(7, 6, 2, /*labels=*/false);
  d.history = HistoryConfig::full();
  d.assign = AssignMode::Nearest;
  write_counts_file(path, d);
  {
    RawFile raw(path);
    raw.set_string_attr("history", "sometimes");
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "history", "'sometimes'"}));
  write_counts_file(path, d);
  {
    RawFile raw(path);
    raw.set_string_attr("assign", "far");
  }
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {path, "assign", "'far'"}));
  // the names of the fix syntax read back as the same modes
  {
    RawFile raw(path);
    raw.set_string_attr("assign", "core");
    raw.set_string_attr("history", "multitau");
    raw.set_int_attr("history_m", 3);
    raw.set_int_attr("core_radius", 1);
  }
  const CountsData r = read_counts_file(path);
  EXPECT_EQ(r.assign, AssignMode::Core);
  ASSERT_TRUE(r.history.has_value());
  EXPECT_EQ(*r.history, HistoryConfig::multitau(3));
}

TEST(CountsFileOptional, CheckAppendableNamesTheMismatch) {
  const CountsData a = make_counts(7, 10, 3, /*labels=*/false);
  EXPECT_NO_THROW(check_appendable(a, a));
  auto with = [&](const std::function<void(CountsData&)>& f) {
    CountsData b = a;
    f(b);
    return b;
  };
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.nevery *= 2; })); }, {"Nevery"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.lags.pop_back(); })); }, {"lags"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.site_fractional.pop_back(); })); },
      {"number of sites"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.site_fractional[1][0] += 0.1; })); },
      {"site 1"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.units = "real"; })); }, {"units"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] { check_appendable(a, with([](CountsData& b) { b.timestep *= 2; })); }, {"timestep"}));
  CountsData h = a;
  h.history = HistoryConfig::full();
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] {
        check_appendable(h, with([](CountsData& b) { b.history = HistoryConfig::multitau(4); }));
      },
      {"history", "'full'", "'multitau'"}));
  h.history = HistoryConfig::multitau(8);
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] {
        check_appendable(h, with([](CountsData& b) { b.history = HistoryConfig::multitau(4); }));
      },
      {"multitau M", "8", "4"}));
  EXPECT_TRUE(ThrowsWith<std::invalid_argument>(
      [&] {
        check_appendable(a, with([](CountsData& b) {
                           b.assign = AssignMode::Core;
                           b.core_radius = 1;
                         }));
      },
      {"assign", "'nearest'", "'core'"}));
  // a file without the attribute was counted with the nearest site
  EXPECT_NO_THROW(check_appendable(a, with([](CountsData& b) { b.assign = AssignMode::Nearest; })));
}

// ------------------------------------------------------------------ faults: disks and damage

namespace {

/// Byte offset in the file of the first chunk of a dataset (checksummed datasets are chunked).
haddr_t first_chunk_offset(const std::string& path, const char* name) {
  RawFile raw(path);
  hid_t dset = H5Dopen2(raw.id(), name, H5P_DEFAULT);
  EXPECT_GE(dset, 0) << name;
  hid_t space = H5Dget_space(dset);
  hsize_t offset[2] = {0, 0};
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  hsize_t size = 0;
  EXPECT_GE(H5Dget_chunk_info(dset, space, 0, offset, &mask, &addr, &size), 0) << name;
  H5Sclose(space);
  H5Dclose(dset);
  return addr;
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(CountsFileChecksums, EveryNonEmptyDatasetCarriesFletcher32) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_counts_file(path, make_counts(41, 6, 3, true));
  RawFile raw(path);
  for (const char* name : {"/counts/count", "/counts/from", "/counts/shift", "/lags/n_origins",
                           "/lags/total_counts", "/sites/occupancy", "/sites/fractional",
                           "/box/h", "/lags/displacement_sq_sum"}) {
    if (H5Lexists(raw.id(), name, H5P_DEFAULT) <= 0) continue;
    hid_t dset = H5Dopen2(raw.id(), name, H5P_DEFAULT);
    ASSERT_GE(dset, 0) << name;
    hid_t dcpl = H5Dget_create_plist(dset);
    unsigned flags = 0, values[4], config = 0;
    std::size_t nvalues = 4;
    char fname[64];
    EXPECT_GE(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nvalues, values,
                                   sizeof fname, fname, &config), 0)
        << name << " has no Fletcher-32 filter";
    H5Pclose(dcpl);
    H5Dclose(dset);
  }
}

TEST(CountsFileChecksums, FlippedCountInFileWithoutBlocksIsReportedAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  const CountsData d = make_counts(42, 6, 3, false);
  ASSERT_EQ(d.block_steps, 0);
  write_counts_file(path, d);
  const haddr_t at = first_chunk_offset(path, "/counts/count");
  ASSERT_NE(at, HADDR_UNDEF);
  flip_byte(path, at + 1);  // the low byte of the first count changes by 16 (low bits)
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(ThrowsWith<std::runtime_error>(
      [&] { read_counts_file(path); },
      {"counts file '" + path + "'", "damaged", "'/counts/count'", "checksum"}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // no HDF5 error stack printed
}

TEST(CountsFileChecksums, ChangedMetadataIsReportedAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_counts_file(path, make_counts(43, 6, 2, false));
  // the root attributes live in the root group's object header, which carries a checksum
  const std::string bytes = file_bytes(path);
  const auto at = bytes.find("first_step");
  ASSERT_NE(at, std::string::npos);
  flip_byte(path, at + 2);
  EXPECT_TRUE(ThrowsWith<std::runtime_error>([&] { read_counts_file(path); },
                                             {"counts file '" + path + "'", "damaged"}));
}

TEST(CountsFileFaults, FullDiskLeavesThePreviousFileAndNoTemporary) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "/dev/full is missing";
  TempDir dir;
  const std::string path = dir.file("c.h5");
  const CountsData a = make_counts(44, 6, 2, false);
  write_counts_file(path, a);
  // the temporary is a link to /dev/full: every write fails with ENOSPC, as on a full disk
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  fs::create_symlink("/dev/full", tmp);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!fs::is_symlink(tmp)) fs::create_symlink("/dev/full", tmp);
    ::testing::internal::CaptureStderr();
    EXPECT_TRUE(ThrowsWith<std::runtime_error>(
        [&] { write_counts_file(path, make_counts(45, 7, 3, true)); },
        {"cannot write counts file '" + path + "'", "No space left on device"}));
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    EXPECT_FALSE(fs::exists(fs::symlink_status(tmp)));  // the temporary is gone
    expect_same(a, read_counts_file(path));             // the previous file is intact
  }
  // space again: the next write succeeds
  write_counts_file(path, make_counts(45, 7, 3, true));
  expect_same(make_counts(45, 7, 3, true), read_counts_file(path));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"c.h5"});
}
