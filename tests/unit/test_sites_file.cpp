// Unit tests for the sites text file reader (src/ionmsm/sites_file.*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "ionmsm/sites_file.hpp"

using ionmsm::parse_sites_text;
using ionmsm::read_sites_file;
using ionmsm::SitesFile;

namespace {

// Returns the message of the std::invalid_argument thrown by parse_sites_text, or "" (and a
// test failure) when nothing was thrown.
std::string parse_error(const std::string& text, const std::string& name = "in.sites") {
  try {
    parse_sites_text(text, name);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception for:\n" << text;
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(SitesFile, ParsesTaggedFractionalFileWithLabels) {
  const std::string text =
      "# ionmsm-sites 1\n"
      "# a comment\n"
      "\n"
      "coordinates fractional\n"
      "0.0 0.25 0.5 Li1\n"
      "  -0.5\t1e-1  +2.5E0   oct  # trailing comment\n"
      "1 2 3\n";
  const SitesFile f = parse_sites_text(text, "a.sites");
  EXPECT_TRUE(f.fractional);
  ASSERT_EQ(f.coords.size(), 3u);
  ASSERT_EQ(f.labels.size(), 3u);
  EXPECT_EQ(f.coords[0], Eigen::Vector3d(0.0, 0.25, 0.5));
  EXPECT_EQ(f.coords[1], Eigen::Vector3d(-0.5, 0.1, 2.5));
  EXPECT_EQ(f.coords[2], Eigen::Vector3d(1.0, 2.0, 3.0));
  EXPECT_EQ(f.labels[0], "Li1");
  EXPECT_EQ(f.labels[1], "oct");
  EXPECT_EQ(f.labels[2], "");
}

TEST(SitesFile, DefaultsToCartesianAndAcceptsCrlfAndNoTrailingNewline) {
  const SitesFile f = parse_sites_text("1.5 2.5 3.5\r\n4 5 6 B\r\n7 8 9", "b.sites");
  EXPECT_FALSE(f.fractional);
  ASSERT_EQ(f.coords.size(), 3u);
  EXPECT_EQ(f.coords[2], Eigen::Vector3d(7.0, 8.0, 9.0));
  EXPECT_EQ(f.labels[1], "B");
  const SitesFile c = parse_sites_text("coordinates cartesian\n0 0 0\n", "c.sites");
  EXPECT_FALSE(c.fractional);
  // No tag is fine; an untagged first comment is just a comment.
  EXPECT_EQ(parse_sites_text("# sites of LLZO\n0 0 0\n", "d").coords.size(), 1u);
}

TEST(SitesFile, RejectsWrongTagVersion) {
  const std::string msg = parse_error("# ionmsm-sites 2\n0 0 0\n", "v.sites");
  EXPECT_TRUE(contains(msg, "v.sites:1:")) << msg;
  EXPECT_TRUE(contains(msg, "version")) << msg;
  EXPECT_TRUE(contains(msg, "'2'")) << msg;
  const std::string none = parse_error("# ionmsm-sites\n0 0 0\n", "v.sites");
  EXPECT_TRUE(contains(none, "version")) << none;
}

TEST(SitesFile, RejectsMalformedLinesNamingFileAndLine) {
  std::string msg = parse_error("0 0 0\n1 2\n", "x.sites");
  EXPECT_EQ(msg, "x.sites:2: expected three coordinates 'x y z [label]', got '1 2'");

  msg = parse_error("# c\n1 abc 3\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:2: expected three coordinates 'x y z [label]'")) << msg;
  EXPECT_TRUE(contains(msg, "got '1 abc 3'")) << msg;

  msg = parse_error("1 2 3 L extra\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:1:")) << msg;
  EXPECT_TRUE(contains(msg, "too many columns")) << msg;

  msg = parse_error("0 0 0\n1 nan 3\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:2:")) << msg;
  EXPECT_TRUE(contains(msg, "non-finite")) << msg;
  msg = parse_error("inf 0 0\n", "x.sites");
  EXPECT_TRUE(contains(msg, "non-finite")) << msg;
  msg = parse_error("1e999 0 0\n", "x.sites");
  EXPECT_TRUE(contains(msg, "non-finite")) << msg;

  msg = parse_error("0 0 0\nfoo bar\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:2:")) << msg;
  EXPECT_TRUE(contains(msg, "'foo'")) << msg;

  msg = parse_error("1.0.0 0 0\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:1:")) << msg;
  msg = parse_error("1,5 0 0\n", "x.sites");
  EXPECT_TRUE(contains(msg, "x.sites:1:")) << msg;
}

TEST(SitesFile, CoordinatesKeywordRules) {
  std::string msg = parse_error("0 0 0\ncoordinates fractional\n", "k.sites");
  EXPECT_TRUE(contains(msg, "k.sites:2:")) << msg;
  EXPECT_TRUE(contains(msg, "before the first site")) << msg;
  msg = parse_error("coordinates polar\n0 0 0\n", "k.sites");
  EXPECT_TRUE(contains(msg, "k.sites:1:")) << msg;
  EXPECT_TRUE(contains(msg, "coordinates fractional")) << msg;
  msg = parse_error("coordinates\n0 0 0\n", "k.sites");
  EXPECT_TRUE(contains(msg, "k.sites:1:")) << msg;
  msg = parse_error("coordinates fractional\ncoordinates cartesian\n0 0 0\n", "k.sites");
  EXPECT_TRUE(contains(msg, "k.sites:2:")) << msg;
}

TEST(SitesFile, RejectsFilesWithoutSites) {
  EXPECT_TRUE(contains(parse_error("", "e.sites"), "no sites")) << parse_error("", "e.sites");
  const std::string msg =
      parse_error("# ionmsm-sites 1\n# only comments\n\ncoordinates fractional\n", "e.sites");
  EXPECT_TRUE(contains(msg, "e.sites")) << msg;
  EXPECT_TRUE(contains(msg, "no sites")) << msg;
}

TEST(SitesFile, ReadsFromDiskAndReportsUnreadableFile) {
  const std::string path =
      ::testing::TempDir() + "ionmsm_sites_test_" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(path);
    out << "# ionmsm-sites 1\ncoordinates fractional\n0.1 0.2 0.3 A\n0.4 0.5 0.6\n";
  }
  const SitesFile f = read_sites_file(path);
  EXPECT_TRUE(f.fractional);
  ASSERT_EQ(f.coords.size(), 2u);
  EXPECT_EQ(f.coords[1], Eigen::Vector3d(0.4, 0.5, 0.6));
  EXPECT_EQ(f.labels[0], "A");
  {
    std::ofstream out(path);
    out << "0 0 0\n0 0\n";
  }
  try {
    read_sites_file(path);
    ADD_FAILURE() << "malformed file accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), path + ":2:")) << e.what();
  }
  std::remove(path.c_str());

  const std::string missing = path + ".does-not-exist";
  try {
    read_sites_file(missing);
    ADD_FAILURE() << "missing file accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open sites file '" + missing + "'");
  }
}

// ------------------------------------------------------------------ sanity checks of sites

TEST(SitesSanity, FractionalLookingCartesianSitesInALargeBoxAreFlagged) {
  std::vector<Eigen::Vector3d> frac;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) frac.emplace_back((i + 0.5) / 4, (j + 0.5) / 4, 0.75);
  const std::string w = ionmsm::check_cartesian_sites(frac, 10.0, "li_sites.txt");
  EXPECT_NE(w.find("'li_sites.txt'"), std::string::npos) << w;
  EXPECT_NE(w.find("coordinates fractional"), std::string::npos) << w;
  // the same numbers in a box about as small as the unit cube are plausible Cartesian sites
  EXPECT_EQ(ionmsm::check_cartesian_sites(frac, 1.5, "li_sites.txt"), "");
  // one site outside the unit cube: Cartesian coordinates spread over the box
  frac.emplace_back(5.0, 0.5, 0.5);
  EXPECT_EQ(ionmsm::check_cartesian_sites(frac, 10.0, "li_sites.txt"), "");
  EXPECT_EQ(ionmsm::check_cartesian_sites({}, 10.0, "x"), "");
}

TEST(SitesSanity, EarlyOccupancyFlagsAtomsCrowdingOntoFewSites) {
  // 96 sites, 20 atoms: 20 occupied is the expected start, 9 (< 20 / 2) is crowding
  std::vector<std::uint64_t> occ(96, 0);
  for (int s = 0; s < 20; ++s) occ[static_cast<std::size_t>(4 * s)] = 3;
  EXPECT_EQ(ionmsm::check_early_occupancy(occ, 20), "");
  std::vector<std::uint64_t> crowded(96, 0);
  for (int s = 0; s < 9; ++s) crowded[static_cast<std::size_t>(s)] = 7;
  const std::string w = ionmsm::check_early_occupancy(crowded, 20);
  EXPECT_NE(w.find("only 9 of 96 sites"), std::string::npos) << w;
  // exactly half of min(atoms, sites) is still plausible
  crowded[9] = 1;
  EXPECT_EQ(ionmsm::check_early_occupancy(crowded, 20), "");
  // more atoms than sites: every site should be occupied early on; 30 of 64 is crowding
  std::vector<std::uint64_t> few(64, 0);
  for (int s = 0; s < 30; ++s) few[static_cast<std::size_t>(s)] = 10;
  EXPECT_NE(ionmsm::check_early_occupancy(few, 200), "");
}

TEST(SitesFile, WriterRoundTripsExactlyWithCommentsAndLabels) {
  SitesFile s;
  s.fractional = true;
  s.coords = {Eigen::Vector3d(0.1, 1.0 / 3.0, 0.9999999999999999),
              Eigen::Vector3d(1e-300, -0.0, 0.5), Eigen::Vector3d(0.25, 0.75, 2.0 / 7.0)};
  s.labels = {"s0", "", "Li_8c"};
  const std::string text = ionmsm::format_sites_text(
      s, {"found by ionmsm sites", "occupancy = ions"}, {"occupancy 0.5", "", "x # y"});
  EXPECT_EQ(text.rfind("# ionmsm-sites 1\n# found by ionmsm sites\n", 0), 0u) << text;
  const SitesFile r = parse_sites_text(text, "w.sites");
  EXPECT_TRUE(r.fractional);
  ASSERT_EQ(r.coords.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.coords[i], s.coords[i]) << i;  // bit-exact
    EXPECT_EQ(r.labels[i], s.labels[i]);
  }
  // Cartesian, no labels, no comments, through a file
  SitesFile c;
  c.coords = {Eigen::Vector3d(-1.5, 2.0, 3.125)};
  char tmpl[] = "/tmp/ionmsm_sites_XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  ionmsm::write_sites_file(tmpl, c);
  const SitesFile rc = read_sites_file(tmpl);
  std::remove(tmpl);
  EXPECT_FALSE(rc.fractional);
  ASSERT_EQ(rc.coords.size(), 1u);
  EXPECT_EQ(rc.coords[0], c.coords[0]);
  EXPECT_EQ(rc.labels[0], "");
}

TEST(SitesFile, WriterRefusesWhatCannotBeReadBack) {
  SitesFile s;
  EXPECT_THROW(ionmsm::format_sites_text(s), std::invalid_argument);  // no sites
  s.coords = {Eigen::Vector3d(0, 0, 0)};
  s.labels = {"a b"};
  EXPECT_THROW(ionmsm::format_sites_text(s), std::invalid_argument);
  s.labels = {"a#b"};
  EXPECT_THROW(ionmsm::format_sites_text(s), std::invalid_argument);
  s.labels = {"ok"};
  EXPECT_THROW(ionmsm::format_sites_text(s, {"two\nlines"}), std::invalid_argument);
  EXPECT_THROW(ionmsm::format_sites_text(s, {}, {"a", "b"}), std::invalid_argument);
  s.coords[0][1] = std::nan("");
  EXPECT_THROW(ionmsm::format_sites_text(s), std::invalid_argument);
  s.coords[0][1] = 0.0;
  EXPECT_THROW(ionmsm::write_sites_file("/nonexistent-dir/x.sites", s), std::invalid_argument);
}
