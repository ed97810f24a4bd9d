// Unit tests for Box, SiteLocator and locate_brute_force (src/ionmsm/geometry.*).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/geometry.hpp"

using ionmsm::Box;
using ionmsm::Image;
using ionmsm::locate_brute_force;
using ionmsm::SiteImage;
using ionmsm::SiteIndex;
using ionmsm::SiteLocator;

namespace {

Box lammps_box(double xlo, double ylo, double zlo, double xprd, double yprd, double zprd, double xy,
               double xz, double yz) {
  const double lo[3] = {xlo, ylo, zlo};
  const double hi[3] = {xlo + xprd, ylo + yprd, zlo + zprd};
  return Box::from_lammps(lo, hi, xy, xz, yz);
}

std::vector<Eigen::Vector3d> random_sites(std::size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Eigen::Vector3d> s(n);
  for (auto& f : s) f = Eigen::Vector3d(u(rng), u(rng), u(rng));
  return s;
}

std::string describe(const SiteImage& r) {
  std::ostringstream os;
  os.precision(17);
  os << "{site " << r.site << ", image (" << r.image[0] << "," << r.image[1] << "," << r.image[2]
     << "), d2 " << r.distance2 << "}";
  return os.str();
}

bool same(const SiteImage& a, const SiteImage& b) {
  return a.site == b.site && a.image == b.image && a.distance2 == b.distance2;
}

// Compares locate() with the brute force on `npoints` random points whose fractional
// coordinates lie in [-spread, spread + 1) (several boxes), plus points many boxes away.
// Returns the number of mismatches (and reports the first few).
int compare_random(const std::vector<Eigen::Vector3d>& sites, const Box& box, int npoints,
                   double spread, int range, std::uint64_t seed) {
  SiteLocator loc(sites, box);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-spread, spread + 1.0);
  std::uniform_int_distribution<int> far(-1000, 1000);
  int bad = 0;
  for (int i = 0; i < npoints; ++i) {
    Eigen::Vector3d f(u(rng), u(rng), u(rng));
    if (i % 4 == 3) f += Eigen::Vector3d(far(rng), far(rng), far(rng));  // large image flags
    const Eigen::Vector3d x = box.to_cartesian(f);
    const SiteImage a = loc.locate(x);
    const SiteImage b = locate_brute_force(sites, box, x, range);
    if (!same(a, b)) {
      if (++bad <= 5) {
        ADD_FAILURE() << "point " << i << " f=(" << f.transpose() << "): locate " << describe(a)
                      << " brute force " << describe(b);
      }
    }
  }
  return bad;
}

struct NamedBox {
  const char* name;
  Box box;
  int range;  // brute-force range that certainly contains the nearest image
};

std::vector<NamedBox> test_boxes() {
  return {
      {"orthogonal", lammps_box(-1.0, -2.0, -3.0, 10.0, 8.0, 7.0, 0.0, 0.0, 0.0), 3},
      {"tilt +0.5", lammps_box(0.5, 0.0, 2.0, 10.0, 8.0, 7.0, 5.0, 5.0, 4.0), 3},
      {"tilt -0.5", lammps_box(0.0, 1.0, 0.0, 10.0, 8.0, 7.0, -5.0, -4.9, -4.0), 3},
      {"tilt mixed", lammps_box(-3.0, 0.0, 1.0, 9.0, 11.0, 6.0, 4.5, -4.5, 5.5), 3},
      {"tilt small", lammps_box(0.0, 0.0, 0.0, 6.0, 6.0, 6.0, 0.3, -0.2, 0.1), 3},
  };
}

// Simple cubic lattice m x m x m in fractional coordinates; index = (i*m + j)*m + k.
std::vector<Eigen::Vector3d> cubic_lattice(int m) {
  std::vector<Eigen::Vector3d> s;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      for (int k = 0; k < m; ++k) s.emplace_back(double(i) / m, double(j) / m, double(k) / m);
  return s;
}

// BCC-like lattice: two sites per conventional cell, m^3 cells.
std::vector<Eigen::Vector3d> bcc_lattice(int m) {
  std::vector<Eigen::Vector3d> s;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      for (int k = 0; k < m; ++k) {
        s.emplace_back(double(i) / m, double(j) / m, double(k) / m);
        s.emplace_back((i + 0.5) / m, (j + 0.5) / m, (k + 0.5) / m);
      }
  return s;
}

std::int32_t floordiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return static_cast<std::int32_t>(q);
}

}  // namespace

// ------------------------------------------------------------------------------------------ Box

TEST(GeometryBox, FromLammpsBuildsColumns) {
  const double lo[3] = {-1.0, 2.0, 0.5};
  const double hi[3] = {9.0, 10.0, 7.5};
  const Box b = Box::from_lammps(lo, hi, 1.5, -2.0, 0.25);
  EXPECT_EQ(b.origin(), Eigen::Vector3d(-1.0, 2.0, 0.5));
  EXPECT_EQ(b.h().col(0), Eigen::Vector3d(10.0, 0.0, 0.0));
  EXPECT_EQ(b.h().col(1), Eigen::Vector3d(1.5, 8.0, 0.0));
  EXPECT_EQ(b.h().col(2), Eigen::Vector3d(-2.0, 0.25, 7.0));
  EXPECT_DOUBLE_EQ(b.volume(), 10.0 * 8.0 * 7.0);
  EXPECT_FALSE(b.is_orthogonal());
  // Face distances: volume / |cross of the other two vectors|.
  const Eigen::Vector3d a = b.h().col(0), bb = b.h().col(1), c = b.h().col(2);
  EXPECT_NEAR(b.face_distance(0), b.volume() / bb.cross(c).norm(), 1e-12);
  EXPECT_NEAR(b.face_distance(1), b.volume() / a.cross(c).norm(), 1e-12);
  EXPECT_NEAR(b.face_distance(2), b.volume() / a.cross(bb).norm(), 1e-12);
  // For an upper-triangular LAMMPS cell the z face distance is zprd.
  EXPECT_NEAR(b.face_distance(2), 7.0, 1e-12);
  EXPECT_THROW(b.face_distance(3), std::invalid_argument);

  const Box o = Box::from_lammps(lo, hi, 0.0, 0.0, 0.0);
  EXPECT_TRUE(o.is_orthogonal());
  EXPECT_NEAR(o.face_distance(0), 10.0, 1e-12);
  EXPECT_NEAR(o.face_distance(1), 8.0, 1e-12);
  EXPECT_NEAR(o.face_distance(2), 7.0, 1e-12);
}

TEST(GeometryBox, FractionalCartesianRoundTrip) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-50.0, 50.0);
  for (const NamedBox& nb : test_boxes()) {
    for (int i = 0; i < 200; ++i) {
      const Eigen::Vector3d x(u(rng), u(rng), u(rng));
      const Eigen::Vector3d f = nb.box.to_fractional(x);
      EXPECT_LT((nb.box.to_cartesian(f) - x).norm(), 1e-12 * 50.0) << nb.name;
      const Eigen::Vector3d g(u(rng) / 7.0, u(rng) / 7.0, u(rng) / 7.0);
      EXPECT_LT((nb.box.to_fractional(nb.box.to_cartesian(g)) - g).norm(), 1e-13 * 10.0) << nb.name;
    }
    // Cell vectors map to unit fractional steps.
    for (int k = 0; k < 3; ++k) {
      const Eigen::Vector3d f =
          nb.box.to_fractional(nb.box.origin() + nb.box.h().col(k)) - Eigen::Vector3d::Unit(k);
      EXPECT_LT(f.norm(), 1e-14) << nb.name;
    }
  }
}

TEST(GeometryBox, SingularOrNonFiniteThrows) {
  Eigen::Matrix3d h = Eigen::Matrix3d::Identity();
  h.col(2) = Eigen::Vector3d::Zero();
  EXPECT_THROW(Box(Eigen::Vector3d::Zero(), h), std::invalid_argument);
  h = Eigen::Matrix3d::Identity();
  h.col(1) = 2.0 * h.col(0);  // parallel vectors
  EXPECT_THROW(Box(Eigen::Vector3d::Zero(), h), std::invalid_argument);
  h = Eigen::Matrix3d::Identity();
  h(0, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(Box(Eigen::Vector3d::Zero(), h), std::invalid_argument);
  h = Eigen::Matrix3d::Identity();
  h(2, 2) = std::numeric_limits<double>::infinity();
  EXPECT_THROW(Box(Eigen::Vector3d::Zero(), h), std::invalid_argument);
  EXPECT_THROW(Box(Eigen::Vector3d(0.0, std::nan(""), 0.0), Eigen::Matrix3d::Identity()),
               std::invalid_argument);
  const double lo[3] = {0.0, 0.0, 0.0};
  const double hi[3] = {1.0, 0.0, 1.0};  // zero y length
  EXPECT_THROW(Box::from_lammps(lo, hi, 0.0, 0.0, 0.0), std::invalid_argument);
  // A valid left-handed cell is fine (volume is |det|).
  Eigen::Matrix3d lh = Eigen::Matrix3d::Identity();
  lh(2, 2) = -2.0;
  EXPECT_DOUBLE_EQ(Box(Eigen::Vector3d::Zero(), lh).volume(), 2.0);
}

// -------------------------------------------------------------------------- SiteLocator: basics

TEST(GeometryLocator, RejectsBadInput) {
  const Box box = lammps_box(0, 0, 0, 5, 5, 5, 0, 0, 0);
  EXPECT_THROW(SiteLocator({}, box), std::invalid_argument);
  EXPECT_THROW(SiteLocator({Eigen::Vector3d(0.1, std::nan(""), 0.2)}, box), std::invalid_argument);
  SiteLocator loc({Eigen::Vector3d(0.1, 0.2, 0.3)}, box);
  EXPECT_THROW(loc.locate(Eigen::Vector3d(std::nan(""), 0.0, 0.0)), std::invalid_argument);
  EXPECT_THROW(locate_brute_force({}, box, Eigen::Vector3d::Zero()), std::invalid_argument);
  EXPECT_THROW(locate_brute_force({Eigen::Vector3d::Zero()}, box, Eigen::Vector3d::Zero(), -1),
               std::invalid_argument);
}

TEST(GeometryLocator, WrapsSiteCoordinates) {
  const Box box = lammps_box(0, 0, 0, 4, 4, 4, 1, 0, 0);
  SiteLocator loc({Eigen::Vector3d(1.25, -0.25, 3.5), Eigen::Vector3d(-1e-300, 0.0, -2.0)}, box);
  EXPECT_EQ(loc.size(), 2u);
  EXPECT_EQ(loc.fractional(0), Eigen::Vector3d(0.25, 0.75, 0.5));
  for (int k = 0; k < 3; ++k) {
    EXPECT_GE(loc.fractional(1)[k], 0.0);
    EXPECT_LT(loc.fractional(1)[k], 1.0);
  }
  EXPECT_EQ(loc.cartesian(0), box.to_cartesian(Eigen::Vector3d(0.25, 0.75, 0.5)));
}

// ------------------------------------------------------- SiteLocator vs brute force, many cells

TEST(GeometryLocator, OneSiteMatchesBruteForce) {
  std::mt19937_64 rng(11);
  for (const NamedBox& nb : test_boxes()) {
    const auto sites = random_sites(1, rng);
    EXPECT_EQ(compare_random(sites, nb.box, 3000, 3.0, nb.range, 100), 0) << nb.name;
  }
}

TEST(GeometryLocator, TwoSitesMatchBruteForce) {
  std::mt19937_64 rng(12);
  for (const NamedBox& nb : test_boxes()) {
    const auto sites = random_sites(2, rng);
    EXPECT_EQ(compare_random(sites, nb.box, 3000, 3.0, nb.range, 200), 0) << nb.name;
  }
}

TEST(GeometryLocator, FewSitesMatchBruteForce) {
  std::mt19937_64 rng(13);
  for (const NamedBox& nb : test_boxes()) {
    for (std::size_t n : {3u, 5u, 9u}) {
      const auto sites = random_sites(n, rng);
      EXPECT_EQ(compare_random(sites, nb.box, 1500, 2.0, nb.range, 300 + n), 0)
          << nb.name << " with " << n << " sites";
    }
  }
}

TEST(GeometryLocator, TwoHundredRandomSitesMatchBruteForce) {
  std::mt19937_64 rng(14);
  for (const NamedBox& nb : test_boxes()) {
    const auto sites = random_sites(200, rng);
    EXPECT_EQ(compare_random(sites, nb.box, 1000, 2.0, nb.range, 400), 0) << nb.name;
  }
}

TEST(GeometryLocator, RandomLegalTiltsMatchBruteForce) {
  // Random cells with every tilt anywhere in LAMMPS' default range [-0.5, 0.5] x length.
  std::mt19937_64 rng(15);
  std::uniform_real_distribution<double> len(3.0, 12.0), tilt(-0.5, 0.5), u(-5.0, 5.0);
  for (int c = 0; c < 12; ++c) {
    const double lx = len(rng), ly = len(rng), lz = len(rng);
    const Box box = lammps_box(u(rng), u(rng), u(rng), lx, ly, lz, tilt(rng) * lx, tilt(rng) * lx,
                               tilt(rng) * ly);
    const auto sites = random_sites(1 + static_cast<std::size_t>(c * 7), rng);
    const int range = (std::max({lx, ly, lz}) / std::min({lx, ly, lz}) > 2.0) ? 5 : 3;
    EXPECT_EQ(compare_random(sites, box, 600, 2.0, range, 500 + c), 0) << "cell " << c;
  }
}

TEST(GeometryLocator, ExtremeAspectTriclinicMatchesWideBruteForce) {
  // Long a, short b and c, maximal tilts: the nearest image can be several cells away in
  // fractional index, so the reference uses a wide range.
  const Box box = lammps_box(0.0, 0.0, 0.0, 20.0, 5.0, 3.0, 10.0, -10.0, 2.5);
  std::mt19937_64 rng(16);
  for (std::size_t n : {1u, 2u, 40u}) {
    const auto sites = random_sites(n, rng);
    EXPECT_EQ(compare_random(sites, box, 400, 2.0, 7, 600 + n), 0) << n << " sites";
  }
}

TEST(GeometryLocator, BccLatticeRandomPointsMatchBruteForce) {
  const auto sites = bcc_lattice(3);
  for (const NamedBox& nb : test_boxes()) {
    EXPECT_EQ(compare_random(sites, nb.box, 1000, 2.0, nb.range, 700), 0) << nb.name;
  }
}

// ------------------------------------------------------------------------ exact ties and points

TEST(GeometryLocator, ExactTiesOnCubicLatticePickLowestIndex) {
  // 4x4x4 simple cubic, lattice constant 1.5, box 6: every coordinate used below is a dyadic
  // rational, so all distances are exact and ties are exact.
  const int m = 4;
  const double a = 1.5;
  const auto sites = cubic_lattice(m);
  const double lo[3] = {-3.0, -3.0, -3.0};
  const double hi[3] = {3.0, 3.0, 3.0};
  const Box box = Box::from_lammps(lo, hi, 0.0, 0.0, 0.0);
  const SiteLocator loc(sites, box);
  auto index = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    auto w = [&](std::int64_t v) { return v - std::int64_t(m) * floordiv(v, m); };
    return static_cast<SiteIndex>((w(i) * m + w(j)) * m + w(k));
  };
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<int> cellpick(-40, 40);
  // Offsets (in half lattice constants) from a lattice point to an edge midpoint, a face
  // centre and a body centre; plus 0 (on a site).
  const int kinds[4][3] = {{1, 0, 0}, {1, 1, 0}, {1, 1, 1}, {0, 0, 0}};
  int checked = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int* kind = kinds[trial % 4];
    int dir[3];
    // permute/negate the offset pattern
    const int perm = (trial / 4) % 3;
    for (int k = 0; k < 3; ++k) dir[k] = kind[(k + perm) % 3] * ((trial >> (k + 3)) & 1 ? -1 : 1);
    const std::int64_t P[3] = {cellpick(rng), cellpick(rng), cellpick(rng)};  // lattice point
    // Twice the position in lattice units: 2P + dir.
    Eigen::Vector3d x;
    for (int k = 0; k < 3; ++k) x[k] = lo[k] + a * (2.0 * double(P[k]) + dir[k]) / 2.0;
    // Candidates: all lattice points Q with Q_k = P_k or P_k + dir_k; all at the same distance.
    SiteIndex best_site = std::numeric_limits<SiteIndex>::max();
    Image best_img{0, 0, 0};
    for (int mask = 0; mask < 8; ++mask) {
      std::int64_t Q[3];
      for (int k = 0; k < 3; ++k) Q[k] = P[k] + (((mask >> k) & 1) ? dir[k] : 0);
      const SiteIndex s = index(Q[0], Q[1], Q[2]);
      const Image img{floordiv(Q[0], m), floordiv(Q[1], m), floordiv(Q[2], m)};
      if (s < best_site || (s == best_site && img < best_img)) {
        best_site = s;
        best_img = img;
      }
    }
    const SiteImage r = loc.locate(x);
    const double half = a / 2.0;
    const double expect_d2 = half * half * (std::abs(dir[0]) + std::abs(dir[1]) + std::abs(dir[2]));
    ASSERT_EQ(r.site, best_site) << "trial " << trial;
    ASSERT_EQ(r.image, best_img) << "trial " << trial;
    ASSERT_EQ(r.distance2, expect_d2) << "trial " << trial;
    const SiteImage b = locate_brute_force(sites, box, x, 3);
    ASSERT_TRUE(same(r, b)) << "trial " << trial << " locate " << describe(r) << " brute "
                            << describe(b);
    ++checked;
  }
  EXPECT_EQ(checked, 3000);
}

TEST(GeometryLocator, ExactMidpointsInTriclinicBccMatchBruteForce) {
  // Dyadic triclinic cell and BCC sites: midpoints between any two site images are exact, so
  // equal distances really are equal and the tie rule decides.
  const auto sites = bcc_lattice(2);
  const Box box = lammps_box(-2.0, 1.0, 0.5, 8.0, 8.0, 4.0, 4.0, -2.0, 2.0);
  const SiteLocator loc(sites, box);
  std::mt19937_64 rng(18);
  std::uniform_int_distribution<int> site(0, static_cast<int>(sites.size()) - 1), img(-3, 3),
      far(-200, 200);
  int bad = 0, ties = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const int s1 = site(rng), s2 = site(rng);
    const Eigen::Vector3d n1(far(rng), far(rng), far(rng));
    const Eigen::Vector3d n2 = n1 + Eigen::Vector3d(img(rng) % 2, img(rng) % 2, img(rng) % 2);
    const Eigen::Vector3d x = box.to_cartesian(0.5 * (sites[static_cast<std::size_t>(s1)] + n1 +
                                                      sites[static_cast<std::size_t>(s2)] + n2));
    const SiteImage r = loc.locate(x);
    const SiteImage b = locate_brute_force(sites, box, x, 3);
    if (!same(r, b) && ++bad <= 5) {
      ADD_FAILURE() << "trial " << trial << " locate " << describe(r) << " brute " << describe(b);
    }
    // Count how often the brute force really had a tie at the optimum (to prove the test
    // exercises the tie rule).
    int nbest = 0;
    const Eigen::Vector3d f = box.to_fractional(x);
    for (std::size_t s = 0; s < sites.size(); ++s)
      for (int i = -3; i <= 3; ++i)
        for (int j = -3; j <= 3; ++j)
          for (int k = -3; k <= 3; ++k) {
            const Image n{static_cast<int>(std::floor(f[0])) + i,
                          static_cast<int>(std::floor(f[1])) + j,
                          static_cast<int>(std::floor(f[2])) + k};
            if (ionmsm::image_distance2(box, sites[s], n, x) == b.distance2) ++nbest;
          }
    if (nbest > 1) ++ties;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(ties, 1000);
}

TEST(GeometryLocator, PointsExactlyOnSites) {
  const auto sites = bcc_lattice(3);
  for (const NamedBox& nb : test_boxes()) {
    const SiteLocator loc(sites, nb.box);
    std::mt19937_64 rng(19);
    std::uniform_int_distribution<int> far(-500, 500);
    for (std::size_t s = 0; s < sites.size(); ++s) {
      const Image n{far(rng), far(rng), far(rng)};
      const Eigen::Vector3d g(sites[s][0] + n[0], sites[s][1] + n[1], sites[s][2] + n[2]);
      const Eigen::Vector3d x = nb.box.to_cartesian(g);
      const SiteImage r = loc.locate(x);
      EXPECT_EQ(r.site, static_cast<SiteIndex>(s)) << nb.name;
      EXPECT_EQ(r.image, n) << nb.name;
      EXPECT_LT(r.distance2, 1e-16 * x.squaredNorm() + 1e-20) << nb.name;
      EXPECT_TRUE(same(r, locate_brute_force(sites, nb.box, x, nb.range))) << nb.name;
    }
  }
}

// ------------------------------------------------------------------------------------- set_box

TEST(GeometryLocator, SetBoxKeepsFractionalCoordinates) {
  std::mt19937_64 rng(20);
  const auto sites = random_sites(150, rng);
  const Box box0 = lammps_box(0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 0.0, 0.0, 0.0);
  SiteLocator loc(sites, box0);
  std::vector<Eigen::Vector3d> frac0;
  for (std::size_t s = 0; s < loc.size(); ++s) frac0.push_back(loc.fractional(SiteIndex(s)));

  // NPT-like scalings: isotropic, small anisotropic (same bins), strong strain and shear.
  const std::vector<Box> boxes = {
      lammps_box(0.0, 0.0, 0.0, 10.1, 10.1, 10.1, 0.0, 0.0, 0.0),
      lammps_box(-0.1, 0.05, 0.0, 10.2, 9.9, 10.05, 0.0, 0.0, 0.0),
      lammps_box(-1.0, -2.0, 0.5, 14.0, 7.0, 10.0, 0.0, 0.0, 0.0),
      lammps_box(0.0, 0.0, 0.0, 12.0, 9.0, 8.0, 5.5, -3.0, 4.0),
      box0,
  };
  for (std::size_t bi = 0; bi < boxes.size(); ++bi) {
    const Box& b = boxes[bi];
    loc.set_box(b);
    EXPECT_EQ(loc.box().h(), b.h());
    EXPECT_EQ(loc.box().origin(), b.origin());
    for (std::size_t s = 0; s < loc.size(); ++s) {
      ASSERT_EQ(loc.fractional(SiteIndex(s)), frac0[s]);
      // Cartesian positions follow the box.
      EXPECT_LT((loc.cartesian(SiteIndex(s)) - b.to_cartesian(frac0[s])).norm(), 1e-12);
    }
    // The re-boxed locator matches the brute force and a freshly built locator.
    const SiteLocator fresh(sites, b);
    std::uniform_real_distribution<double> u(-2.0, 3.0);
    int bad = 0;
    for (int i = 0; i < 800; ++i) {
      const Eigen::Vector3d x = b.to_cartesian(Eigen::Vector3d(u(rng), u(rng), u(rng)));
      const SiteImage r = loc.locate(x);
      if (!same(r, locate_brute_force(sites, b, x, 3)) || !same(r, fresh.locate(x))) ++bad;
    }
    EXPECT_EQ(bad, 0) << "box " << bi;
  }
}

// ------------------------------------------------------------------------ min_site_separation

TEST(GeometryLocator, MinSiteSeparationCubicLattice) {
  const double a = 1.3;
  const int m = 5;
  const double lo[3] = {0.7, -1.0, 2.0};
  const double hi[3] = {0.7 + m * a, -1.0 + m * a, 2.0 + m * a};
  const SiteLocator loc(cubic_lattice(m), Box::from_lammps(lo, hi, 0.0, 0.0, 0.0));
  EXPECT_NEAR(loc.min_site_separation(), a, 1e-12);
  // BCC: nearest neighbour distance sqrt(3)/2 a.
  const SiteLocator bcc(bcc_lattice(4), Box::from_lammps(lo, hi, 0.0, 0.0, 0.0));
  EXPECT_NEAR(bcc.min_site_separation(), std::sqrt(3.0) / 2.0 * (m * a / 4.0), 1e-12);
}

TEST(GeometryLocator, MinSiteSeparationSmallCases) {
  const Box box = lammps_box(0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 0.0, 0.0, 0.0);
  EXPECT_EQ(SiteLocator({Eigen::Vector3d(0.3, 0.3, 0.3)}, box).min_site_separation(), 0.0);
  // Two sites, periodic distance is across the boundary: 0.1 and 0.9 -> 2.0, not 8.0.
  EXPECT_NEAR(SiteLocator({Eigen::Vector3d(0.1, 0.5, 0.5), Eigen::Vector3d(0.9, 0.5, 0.5)}, box)
                  .min_site_separation(),
              2.0, 1e-12);
  // Duplicate sites (even via wrapping) give 0.
  EXPECT_NEAR(SiteLocator({Eigen::Vector3d(0.25, 0.5, 0.5), Eigen::Vector3d(1.25, 0.5, -0.5)}, box)
                  .min_site_separation(),
              0.0, 1e-12);
}

TEST(GeometryLocator, MinSiteSeparationMatchesPairwiseBruteForce) {
  std::mt19937_64 rng(21);
  for (const NamedBox& nb : test_boxes()) {
    const auto sites = random_sites(60, rng);
    const SiteLocator loc(sites, nb.box);
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < sites.size(); ++i)
      for (std::size_t j = 0; j < sites.size(); ++j) {
        if (i == j) continue;
        const Eigen::Vector3d x = loc.cartesian(SiteIndex(i));
        for (int a = -3; a <= 3; ++a)
          for (int b = -3; b <= 3; ++b)
            for (int c = -3; c <= 3; ++c)
              best = std::min(best, std::sqrt(ionmsm::image_distance2(
                                        nb.box, loc.fractional(SiteIndex(j)), Image{a, b, c}, x)));
      }
    EXPECT_NEAR(loc.min_site_separation(), best, 1e-12) << nb.name;
  }
}

// ------------------------------------------------------------ shifts across periodic boundaries

TEST(GeometryShift, WalkAcrossBoundariesOrthogonal) {
  // Simple cubic lattice 4x4x4 with a = 2 in a box of 8; an atom walks +x for three box lengths
  // then back, with small y/z wiggles. The nearest lattice point is known analytically.
  const int m = 4;
  const double a = 2.0;
  const double lo[3] = {-1.0, 0.0, 3.0};
  const double hi[3] = {-1.0 + m * a, m * a, 3.0 + m * a};
  const Box box = Box::from_lammps(lo, hi, 0.0, 0.0, 0.0);
  const SiteLocator loc(cubic_lattice(m), box);
  const Eigen::Vector3d o(lo[0], lo[1], lo[2]);

  auto nearest_point = [&](const Eigen::Vector3d& x) {
    Eigen::Vector3d p;
    for (int k = 0; k < 3; ++k) p[k] = o[k] + a * std::round((x[k] - o[k]) / a);
    return p;
  };
  std::vector<Eigen::Vector3d> path;
  const double step = 0.3;  // < a/2: the site changes by at most one neighbour per step
  // x starts at 0.05 (relative to the origin) and moves in steps of 0.3, so it never comes
  // within 0.05 of a point half-way between lattice planes; y stays within 0.2 of 4.1 and z at
  // 5.05: the nearest lattice point is never ambiguous.
  Eigen::Vector3d x = o + Eigen::Vector3d(0.05, 4.1, 5.05);
  for (int i = 0; i < 80; ++i) {
    path.push_back(x);
    x[0] += step;
    x[1] = o[1] + 4.1 + 0.2 * std::sin(0.7 * (i + 1));
  }
  for (int i = 0; i < 80; ++i) {
    path.push_back(x);
    x[0] -= step;
  }
  std::vector<SiteImage> located;
  for (const auto& p : path) located.push_back(loc.locate(p));

  int crossings_plus = 0, crossings_minus = 0;
  for (std::size_t t = 1; t < path.size(); ++t) {
    const SiteImage& s0 = located[t - 1];
    const SiteImage& s1 = located[t];
    const Image shift{s1.image[0] - s0.image[0], s1.image[1] - s0.image[1],
                      s1.image[2] - s0.image[2]};
    EXPECT_EQ(shift[1], 0);
    EXPECT_EQ(shift[2], 0);
    EXPECT_LE(std::abs(shift[0]), 1);
    if (shift[0] == 1) ++crossings_plus;
    if (shift[0] == -1) ++crossings_minus;
    // Site-projected displacement H (f_to - f_from + shift) equals the displacement of the
    // nearest lattice point.
    const Eigen::Vector3d df = loc.fractional(s1.site) - loc.fractional(s0.site) +
                               Eigen::Vector3d(shift[0], shift[1], shift[2]);
    const Eigen::Vector3d disp = box.h() * df;
    const Eigen::Vector3d truth = nearest_point(path[t]) - nearest_point(path[t - 1]);
    EXPECT_LT((disp - truth).norm(), 1e-12) << "step " << t;
  }
  // 80 steps of 0.3 = 24 = three box lengths each way.
  EXPECT_EQ(crossings_plus, 3);
  EXPECT_EQ(crossings_minus, 3);
  // Long-lag displacement over the forward leg: three box lengths.
  const SiteImage& a0 = located[0];
  const SiteImage& a1 = located[80];
  const Eigen::Vector3d df = loc.fractional(a1.site) - loc.fractional(a0.site) +
                             Eigen::Vector3d(a1.image[0] - a0.image[0], a1.image[1] - a0.image[1],
                                             a1.image[2] - a0.image[2]);
  const Eigen::Vector3d truth = nearest_point(path[80]) - nearest_point(path[0]);
  EXPECT_LT((box.h() * df - truth).norm(), 1e-12);
  EXPECT_NEAR(truth[0], 24.0, 1e-12);
  // Back at the start: same site and image.
  EXPECT_EQ(located.back().site, located.front().site);
  EXPECT_EQ(located.back().image, located.front().image);
}

TEST(GeometryShift, WalkAcrossBoundariesTriclinic) {
  // Triclinic cell; the atom walks along the direction of the cell vector b (which changes x and
  // y) and along c. The image component of the crossed face changes by exactly +-1 per crossing
  // and the site-projected displacements add up to the displacement of the located positions.
  const auto sites = bcc_lattice(3);
  const Box box = lammps_box(0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 4.5, -3.0, 4.0);
  const SiteLocator loc(sites, box);
  for (int axis : {0, 1, 2}) {
    const Eigen::Vector3d dir = box.h().col(axis) / box.h().col(axis).norm();
    const double step = 0.2;
    const int nsteps = static_cast<int>(3.0 * box.h().col(axis).norm() / step);
    Eigen::Vector3d x = box.to_cartesian(Eigen::Vector3d(0.13, 0.27, 0.41));
    SiteImage prev = loc.locate(x);
    const SiteImage first = prev;
    Eigen::Vector3d total = Eigen::Vector3d::Zero();
    int crossings = 0;
    for (int i = 0; i < nsteps; ++i) {
      x += step * dir;
      const SiteImage cur = loc.locate(x);
      ASSERT_TRUE(same(cur, locate_brute_force(sites, box, x, 3)));
      const Image shift{cur.image[0] - prev.image[0], cur.image[1] - prev.image[1],
                        cur.image[2] - prev.image[2]};
      for (int k = 0; k < 3; ++k) {
        EXPECT_LE(std::abs(shift[k]), 1) << "axis " << axis << " step " << i;
        // Moving along cell vector `axis` keeps the other fractional coordinates fixed, so
        // only that image component may change (and only upwards).
        if (k != axis) {
          EXPECT_EQ(shift[k], 0) << "axis " << axis << " step " << i;
        } else {
          EXPECT_GE(shift[k], 0) << "axis " << axis << " step " << i;
        }
      }
      crossings += shift[axis];
      const Eigen::Vector3d df = loc.fractional(cur.site) - loc.fractional(prev.site) +
                                 Eigen::Vector3d(shift[0], shift[1], shift[2]);
      const Eigen::Vector3d disp = box.h() * df;
      const Eigen::Vector3d truth =
          (box.to_cartesian(loc.fractional(cur.site) +
                            Eigen::Vector3d(cur.image[0], cur.image[1], cur.image[2])) -
           box.to_cartesian(loc.fractional(prev.site) +
                            Eigen::Vector3d(prev.image[0], prev.image[1], prev.image[2])));
      EXPECT_LT((disp - truth).norm(), 1e-9);
      // The located site is near the atom (within the largest possible nearest distance).
      EXPECT_LT(std::sqrt(cur.distance2), 9.0);
      total += disp;
      prev = cur;
    }
    EXPECT_EQ(crossings, 3) << "axis " << axis;
    // Sum of per-step displacements equals the end-to-end site displacement.
    const Eigen::Vector3d end_to_end =
        box.h() * (loc.fractional(prev.site) - loc.fractional(first.site) +
                   Eigen::Vector3d(prev.image[0] - first.image[0], prev.image[1] - first.image[1],
                                   prev.image[2] - first.image[2]));
    EXPECT_LT((total - end_to_end).norm(), 1e-9);
    // ... and that is close to the true displacement of the atom (3 cell lengths, within two
    // nearest-site distances).
    EXPECT_NEAR((end_to_end - 3.0 * box.h().col(axis)).norm(), 0.0, 2.0 * 9.0);
  }
}

// ------------------------------------------------------------ nearest image and core sets

TEST(GeometryNearestImage, MatchesBruteForceOverImagesTriclinic) {
  std::mt19937_64 rng(31);
  const Box box = lammps_box(0.3, -1.0, 2.0, 5.0, 4.0, 6.0, 2.4, -2.9, 1.9);
  const auto sites = random_sites(5, rng);
  SiteLocator loc(sites, box);
  std::uniform_real_distribution<double> u(-30.0, 30.0);
  for (int p = 0; p < 300; ++p) {
    const Eigen::Vector3d x(u(rng), u(rng), u(rng));
    for (SiteIndex s = 0; s < 5; ++s) {
      const SiteImage got = loc.nearest_image(s, x);
      // brute force: only site s
      const SiteImage want =
          locate_brute_force({loc.fractional(s)}, box, x, 4);
      EXPECT_EQ(got.site, s);
      EXPECT_EQ(got.image, want.image) << describe(got) << " vs " << describe(want);
      EXPECT_EQ(got.distance2, want.distance2);
    }
  }
  EXPECT_THROW(loc.nearest_image(5, Eigen::Vector3d::Zero()), std::invalid_argument);
  EXPECT_THROW(loc.nearest_image(0, Eigen::Vector3d(std::nan(""), 0, 0)), std::invalid_argument);
}

TEST(GeometryCore, ShortestLatticeVectorAndMaxRadius) {
  const Box cubic = lammps_box(0, 0, 0, 4.0, 5.0, 6.0, 0, 0, 0);
  EXPECT_DOUBLE_EQ(ionmsm::shortest_lattice_vector(cubic), 4.0);
  // b - a is shorter than a and b here
  const Box tilted = lammps_box(0, 0, 0, 4.0, 1.0, 6.0, 3.5, 0, 0);
  EXPECT_NEAR(ionmsm::shortest_lattice_vector(tilted), std::sqrt(0.25 + 1.0), 1e-12);
  SiteLocator one({Eigen::Vector3d(0.1, 0.2, 0.3)}, cubic);
  EXPECT_DOUBLE_EQ(ionmsm::max_core_radius(one), 2.0);
  SiteLocator two({Eigen::Vector3d(0, 0, 0), Eigen::Vector3d(0.5, 0, 0)}, cubic);
  EXPECT_DOUBLE_EQ(ionmsm::max_core_radius(two), 1.0);
}

TEST(GeometryCore, MilestoningKeepsCommittedSiteUntilAnotherCore) {
  // two sites on a line: x = 1 and x = 3 in a 4 x 4 x 4 box, core radius 0.5
  const Box box = lammps_box(0, 0, 0, 4.0, 4.0, 4.0, 0, 0, 0);
  SiteLocator loc({Eigen::Vector3d(0.25, 0.5, 0.5), Eigen::Vector3d(0.75, 0.5, 0.5)}, box);
  SiteIndex committed = -1;
  auto step = [&](double x) {
    return ionmsm::assign_core(loc, 0.5, committed, Eigen::Vector3d(x, 2.0, 2.0));
  };
  // first sample outside every core: nearest site committed
  auto r = step(1.7);
  EXPECT_EQ(committed, 0);
  EXPECT_FALSE(r.in_core);
  r = step(2.4);  // nearer to site 1, but outside its core
  EXPECT_EQ(r.where.site, 0);
  EXPECT_FALSE(r.in_core);
  r = step(2.6);  // inside site 1's core
  EXPECT_EQ(r.where.site, 1);
  EXPECT_TRUE(r.in_core);
  EXPECT_EQ(committed, 1);
  r = step(4.4);  // between site 1 (x=3) and site 0's image at x=5: keeps site 1, image 0
  EXPECT_EQ(r.where.site, 1);
  EXPECT_EQ(r.where.image, (Image{0, 0, 0}));
  r = step(5.3);  // core of site 0, image +1
  EXPECT_EQ(r.where.site, 0);
  EXPECT_EQ(r.where.image, (Image{1, 0, 0}));
  EXPECT_TRUE(r.in_core);
  // wander far without entering a core: the committed site's nearest image follows
  r = step(5.3 + 2.4);  // 7.7: site 0 images at 5 and 9 -> nearest is 9 (image 2)
  EXPECT_EQ(r.where.site, 0);
  EXPECT_FALSE(r.in_core);
  EXPECT_EQ(r.where.image, (Image{2, 0, 0}));
  SiteIndex bad = 7;
  EXPECT_THROW(ionmsm::assign_core(loc, 0.5, bad, Eigen::Vector3d::Zero()), std::invalid_argument);
  EXPECT_THROW(ionmsm::assign_core(loc, 0.0, committed, Eigen::Vector3d::Zero()),
               std::invalid_argument);
}
