// Unit tests for the counts file integrity check (src/ionmsm/counts_verify.*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#if __has_include(<hdf5.h>)
#include <hdf5.h>
#else
#include <hdf5/serial/hdf5.h>
#endif

#include "ionmsm/counts_file.hpp"
#include "ionmsm/counts_verify.hpp"

namespace fs = std::filesystem;
using namespace ionmsm;

namespace {

/// Two sites, lags 1 and 2 steps, a few counts, optionally in two blocks of 5 steps.
CountsData small_counts(bool blocks) {
  CountsData d;
  d.units = "metal";
  d.timestep = 0.001;
  d.timestep_ps = 0.001;
  d.nevery = 1;
  d.n_samples = 10;
  d.first_step = 0;
  d.last_step = 9;
  d.n_atoms = 2;
  d.site_fractional = {Eigen::Vector3d(0.25, 0.25, 0.25), Eigen::Vector3d(0.75, 0.75, 0.75)};
  d.occupancy = {12, 8};
  for (std::int64_t lag : {1, 2}) {
    LagCounts lc;
    lc.lag_steps = lag;
    lc.n_origins = static_cast<std::uint64_t>(10 - lag);
    TransitionCount a, b;
    a.from = 0; a.to = 0; a.count = static_cast<std::uint64_t>(11 - lag);
    b.from = 1; b.to = 1; b.count = static_cast<std::uint64_t>(7 - lag);
    lc.rows = {a, b};
    d.lags.push_back(lc);
  }
  if (blocks) {
    // all counts in one block of 10 steps (sums to the totals exactly)
    d.block_steps = 10;
    CountBlock blk;
    blk.index = 0;
    blk.n_samples = d.n_samples;
    blk.occupancy = d.occupancy;
    for (const auto& lc : d.lags) {
      blk.n_origins.push_back(lc.n_origins);
      blk.rows.push_back(lc.rows);
    }
    d.blocks = {blk};
  }
  return d;
}

std::string temp_file(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir = fs::temp_directory_path() /
                       ("ionmsm_verify_" + std::to_string(::getpid()) + "_" + info->name());
  fs::create_directories(dir);
  return (dir / name).string();
}

haddr_t first_chunk_offset(const std::string& path, const char* name) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t space = H5Dget_space(dset);
  hsize_t offset[3] = {0, 0, 0};
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  hsize_t size = 0;
  H5Dget_chunk_info(dset, space, 0, offset, &mask, &addr, &size);
  H5Sclose(space);
  H5Dclose(dset);
  H5Fclose(file);
  return addr;
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST(CountsVerify, IntactFileWithBlocksPasses) {
  const std::string path = temp_file("c.h5");
  write_counts_file(path, small_counts(true));
  const CountsFileCheck c = verify_counts_file(path);
  EXPECT_GT(c.datasets, 10u);
  EXPECT_EQ(c.with_checksum + c.empty, c.datasets);
  EXPECT_EQ(c.data.n_samples, 10u);
  EXPECT_EQ(c.data.blocks.size(), 1u);
  fs::remove_all(fs::path(path).parent_path());
}

TEST(CountsVerify, ADatasetTheReaderSkipsIsCheckedToo) {
  // /sites/cartesian is derived data the reader never reads: verify reads it and names it
  const std::string path = temp_file("c.h5");
  write_counts_file(path, small_counts(false));
  EXPECT_NO_THROW(read_counts_file(path));
  const haddr_t at = first_chunk_offset(path, "/sites/cartesian");
  ASSERT_NE(at, HADDR_UNDEF);
  flip_byte(path, at + 3);
  EXPECT_NO_THROW(read_counts_file(path));
  try {
    verify_counts_file(path);
    ADD_FAILURE() << "no exception for a damaged /sites/cartesian";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'" + path + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("damaged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'/sites/cartesian'"), std::string::npos) << msg;
  }
  fs::remove_all(fs::path(path).parent_path());
}

TEST(CountsVerify, FlippedCountWithoutBlocksIsDamaged) {
  const std::string path = temp_file("c.h5");
  write_counts_file(path, small_counts(false));
  flip_byte(path, first_chunk_offset(path, "/counts/count"));
  try {
    verify_counts_file(path);
    ADD_FAILURE() << "no exception for a flipped count";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("damaged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'/counts/count'"), std::string::npos) << msg;
  }
  fs::remove_all(fs::path(path).parent_path());
}

TEST(CountsVerify, MissingAndForeignFilesAreNamed) {
  const std::string path = temp_file("nothing.h5");
  try {
    verify_counts_file(path);
    ADD_FAILURE() << "no exception for a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::ofstream(path) << "not hdf5\n";
  try {
    verify_counts_file(path);
    ADD_FAILURE() << "no exception for a text file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  fs::remove_all(fs::path(path).parent_path());
}
