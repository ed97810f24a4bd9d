// Unit tests of the LAMMPS `dump grid` reader (src/ionmsm/density_grid.*).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/density_grid.hpp"

using ionmsm::DensityGrid;
using ionmsm::parse_dump_grid_text;

namespace {

// One snapshot of a 3x2x2 grid; `cells` are the lines after the GRID CELLS item.
std::string snapshot(long step, const std::string& bounds, const std::string& columns,
                     const std::string& cells, const std::string& size = "3 2 2") {
  return "ITEM: TIMESTEP\n" + std::to_string(step) + "\n" + bounds + "ITEM: DIMENSION\n3\n" +
         "ITEM: GRID SIZE nx ny nz\n" + size + "\nITEM: GRID CELLS " + columns + "\n" + cells;
}

const std::string kOrtho =
    "ITEM: BOX BOUNDS pp pp pp\n0 6\n-1 3\n0.5 2.5\n";

std::string values(int n, double scale) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(scale * (i + 1)) + "\n";
  return s;
}

std::string error_of(const std::string& text, const std::string& name = "dens.grid") {
  try {
    parse_dump_grid_text(text, name);
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

TEST(DensityGrid, ReadsOrthogonalSnapshotInGridIdOrder) {
  const DensityGrid g =
      parse_dump_grid_text(snapshot(500, kOrtho, "f_dens:grid:data", values(12, 0.5)), "a");
  EXPECT_EQ(g.n, (std::array<int, 3>{3, 2, 2}));
  EXPECT_EQ(g.timestep, 500);
  EXPECT_EQ(g.n_snapshots, 1u);
  EXPECT_EQ(g.column, "f_dens:grid:data");
  ASSERT_EQ(g.size(), 12u);
  EXPECT_DOUBLE_EQ(g.density[g.index(2, 1, 0)], 0.5 * 6);  // ID 6 = 1 + 2 + 3*1
  EXPECT_DOUBLE_EQ(g.density[g.index(0, 0, 1)], 0.5 * 7);
  EXPECT_DOUBLE_EQ(g.box.volume(), 6.0 * 4.0 * 2.0);
  EXPECT_DOUBLE_EQ(g.cell_volume(), 4.0);
  EXPECT_NEAR(g.total_number(), 4.0 * 0.5 * 78, 1e-12);
  EXPECT_EQ(g.cell(g.index(1, 1, 1)), (std::array<int, 3>{1, 1, 1}));
  EXPECT_TRUE(g.cell_center(g.index(1, 0, 1)).isApprox(Eigen::Vector3d(0.5, 0.25, 0.75)));
}

TEST(DensityGrid, TriclinicBoundsGiveTheCellAndTheLastSnapshotIsUsed) {
  // Box lo = (0,0,0), hi = (10, 8, 6), xy = 2, xz = -3, yz = 1: bounding box x from -3 to 12.
  const std::string tri =
      "ITEM: BOX BOUNDS xy xz yz pp pp pp\n-3 12 2\n0 9 -3\n0 6 1\n";
  const std::string text = "ITEM: UNITS\nmetal\nITEM: TIME\n0.5\n" +
                           snapshot(0, tri, "c_pg:grid:data f_d:grid:data", "") +
                           // 12 lines, IDs in reverse order
                           [] {
                             std::string s;
                             for (int id = 12; id >= 1; --id)
                               s += std::to_string(id) + " " + std::to_string(id * 0.25) + "\n";
                             return s;
                           }() +
                           "\n" + snapshot(100, tri, "d", values(12, 1.0));
  const DensityGrid first = parse_dump_grid_text(text.substr(0, text.find("\n\n") + 1), "t");
  EXPECT_EQ(first.units, "metal");
  for (std::size_t i = 0; i < 12; ++i) EXPECT_DOUBLE_EQ(first.density[i], 0.25 * (i + 1));
  const DensityGrid g = parse_dump_grid_text(text, "t");
  EXPECT_EQ(g.n_snapshots, 2u);
  EXPECT_EQ(g.timestep, 100);
  EXPECT_EQ(g.units, "metal");
  EXPECT_EQ(g.column, "d");
  Eigen::Matrix3d h;
  h << 10, 2, -3, 0, 8, 1, 0, 0, 6;
  EXPECT_TRUE(g.box.h().isApprox(h)) << g.box.h();
  EXPECT_TRUE(g.box.origin().isZero());
  EXPECT_DOUBLE_EQ(g.density[11], 12.0);
}

TEST(DensityGrid, GridDataItemNameIsAccepted) {
  std::string text = snapshot(1, kOrtho, "rho", values(12, 1.0));
  text.replace(text.find("GRID CELLS"), 10, "GRID DATA");
  EXPECT_EQ(parse_dump_grid_text(text, "x").size(), 12u);
}

TEST(DensityGrid, MalformedOrForeignInputNamesFileAndLine) {
  EXPECT_TRUE(contains(error_of(""), "dens.grid: empty file"));
  // a per-atom dump
  const std::string atoms =
      "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n0 1\n"
      "ITEM: ATOMS id x y z\n1 0 0 0\n2 .5 .5 .5\n";
  std::string e = error_of(atoms);
  EXPECT_TRUE(contains(e, "dens.grid:3:")) << e;
  EXPECT_TRUE(contains(e, "per-atom")) << e;
  // something else entirely (a sites file)
  e = error_of("# ionmsm-sites 1\n0 0 0\n");
  EXPECT_TRUE(contains(e, "dens.grid:1: not a LAMMPS dump grid file")) << e;
  // non-periodic box
  e = error_of(snapshot(0, "ITEM: BOX BOUNDS pp pp ff\n0 1\n0 1\n0 1\n", "d", values(12, 1)));
  EXPECT_TRUE(contains(e, "dens.grid:3:") && contains(e, "periodic")) << e;
  // truncated: 11 of 12 cells
  e = error_of(snapshot(0, kOrtho, "d", values(11, 1)));
  EXPECT_TRUE(contains(e, "unexpected end of file") && contains(e, "12 grid-cell lines")) << e;
  // a non-number on line 15 (the fourth cell)
  std::string bad = snapshot(0, kOrtho, "d", values(12, 1));
  bad.replace(bad.find("4.000000"), 8, "abc");
  e = error_of(bad);
  EXPECT_TRUE(contains(e, "dens.grid:15:") && contains(e, "'abc'")) << e;
  // a negative density
  e = error_of(snapshot(0, kOrtho, "d", "-1\n" + values(11, 1)));
  EXPECT_TRUE(contains(e, "dens.grid:12: negative density")) << e;
  // three columns
  e = error_of(snapshot(0, kOrtho, "a b c", values(12, 1)));
  EXPECT_TRUE(contains(e, "dens.grid:11:") && contains(e, "3 columns")) << e;
  // two columns, an ID repeated
  e = error_of(snapshot(0, kOrtho, "id d", "1 1\n1 2\n" + values(10, 1)));
  EXPECT_TRUE(contains(e, "dens.grid:13: grid ID 1 appears twice")) << e;
  // two columns, an ID out of range
  e = error_of(snapshot(0, kOrtho, "id d", "13 1\n"));
  EXPECT_TRUE(contains(e, "between 1 and 12")) << e;
  // 2-d simulation
  std::string two = snapshot(0, kOrtho, "d", values(12, 1));
  two.replace(two.find("DIMENSION\n3"), 11, "DIMENSION\n2");
  EXPECT_TRUE(contains(error_of(two), "3-d")) << error_of(two);
  // grid size malformed
  e = error_of(snapshot(0, kOrtho, "d", values(12, 1), "3 0 2"));
  EXPECT_TRUE(contains(e, "dens.grid:10:") && contains(e, "positive integers")) << e;
  // a second snapshot with another grid size
  e = error_of(snapshot(0, kOrtho, "d", values(12, 1)) +
               snapshot(1, kOrtho, "d", values(12, 1), "2 3 2"));
  EXPECT_TRUE(contains(e, "grid size changed")) << e;
  // too many lines: the extra line is not an ITEM
  e = error_of(snapshot(0, kOrtho, "d", values(13, 1)));
  EXPECT_TRUE(contains(e, "dens.grid:24:") && contains(e, "ITEM: TIMESTEP")) << e;
  // general triclinic
  e = error_of(snapshot(0, "ITEM: BOX BOUNDS abc origin pp pp pp\n1 0 0 0\n0 1 0 0\n0 0 1 0\n",
                        "d", values(12, 1)));
  EXPECT_TRUE(contains(e, "general triclinic")) << e;
}

TEST(DensityGrid, MissingFileIsNamed) {
  try {
    ionmsm::read_dump_grid("/nonexistent/dens.grid");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "/nonexistent/dens.grid")) << e.what();
  }
}
