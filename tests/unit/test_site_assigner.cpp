// SiteAssigner must give exactly SiteLocator::locate's answer, whatever the previous site.
#include <gtest/gtest.h>

#include <random>

#include "ionmsm/site_assigner.hpp"

namespace {

using ionmsm::Box;
using ionmsm::SiteAssigner;
using ionmsm::SiteImage;
using ionmsm::SiteLocator;

std::vector<Eigen::Vector3d> random_sites(int n, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Eigen::Vector3d> f;
  for (int i = 0; i < n; ++i) f.emplace_back(u(rng), u(rng), u(rng));
  return f;
}

// Crystal-like sites: a jittered 4x4x4 lattice (minimum separation well above the jitter).
std::vector<Eigen::Vector3d> lattice_sites(std::mt19937& rng) {
  std::uniform_real_distribution<double> j(-0.02, 0.02);
  std::vector<Eigen::Vector3d> f;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 4; ++c)
        f.emplace_back((a + 0.5) / 4 + j(rng), (b + 0.5) / 4 + j(rng), (c + 0.5) / 4 + j(rng));
  return f;
}

void expect_same(const SiteImage& a, const SiteImage& b) {
  EXPECT_EQ(a.site, b.site);
  EXPECT_EQ(a.image, b.image);
  EXPECT_DOUBLE_EQ(a.distance2, b.distance2);
}

// Random walks (steps comparable to the site spacing, so both paths are taken), with the
// previous answer fed back, in an orthogonal and a strongly triclinic cell.
TEST(SiteAssigner, RandomWalkEqualsFullSearch) {
  std::mt19937 rng(11);
  for (int cell = 0; cell < 2; ++cell) {
    Eigen::Matrix3d h;
    h << 10.0, (cell ? 4.5 : 0.0), (cell ? -3.0 : 0.0), 0.0, 9.0, (cell ? 4.0 : 0.0), 0.0, 0.0, 8.0;
    Box box(Eigen::Vector3d(-1.0, 2.0, 0.5), h);
    // random sites (tiny separations: mostly full searches) and crystal-like sites (mostly
    // fast hits) must both give exactly the full search's answers
    SiteLocator loc(cell ? lattice_sites(rng) : random_sites(60, rng), box);
    SiteAssigner fast(loc);
    std::normal_distribution<double> step(0.0, cell ? 0.25 : 0.4);
    for (int atom = 0; atom < 50; ++atom) {
      Eigen::Vector3d x = box.to_cartesian(Eigen::Vector3d(0.3, 0.6, 0.2));
      SiteImage prev;
      for (int t = 0; t < 400; ++t) {
        x += Eigen::Vector3d(step(rng), step(rng), step(rng));
        const SiteImage got = fast.assign(x, prev);
        expect_same(got, loc.locate(x));
        prev = got;
      }
    }
    if (cell) EXPECT_GT(fast.fast_hits(), 5000u);
    EXPECT_GT(fast.searches() + fast.neighbour_hits(), 100u);
    EXPECT_GT(fast.neighbour_hits(), 100u);
  }
}

// A wrong or stale previous site never changes the answer.
TEST(SiteAssigner, ArbitraryPreviousNeverChangesTheAnswer) {
  std::mt19937 rng(5);
  Eigen::Matrix3d h = Eigen::Matrix3d::Identity() * 7.0;
  Box box(Eigen::Vector3d::Zero(), h);
  SiteLocator loc(random_sites(30, rng), box);
  SiteAssigner fast(loc);
  std::uniform_real_distribution<double> u(-20.0, 20.0);
  std::uniform_int_distribution<int> s(0, 29), n(-3, 3);
  for (int k = 0; k < 5000; ++k) {
    Eigen::Vector3d x(u(rng), u(rng), u(rng));
    SiteImage prev;
    prev.site = s(rng);
    prev.image = {n(rng), n(rng), n(rng)};
    expect_same(fast.assign(x, prev), loc.locate(x));
  }
}

// One site per cell: the other images of the same site bound the safe radius.
TEST(SiteAssigner, SingleSiteUsesLatticeTranslations) {
  Eigen::Matrix3d h;
  h << 4.0, 1.5, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 4.0;
  Box box(Eigen::Vector3d::Zero(), h);
  SiteLocator loc({Eigen::Vector3d(0.5, 0.5, 0.5)}, box);
  SiteAssigner fast(loc);
  EXPECT_LE(fast.safe_radius(), 0.5 * 4.0 + 1e-12);
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> u(-9.0, 9.0);
  SiteImage prev;
  for (int k = 0; k < 3000; ++k) {
    Eigen::Vector3d x(u(rng), u(rng), u(rng));
    const SiteImage got = fast.assign(x, prev);
    expect_same(got, loc.locate(x));
    prev = got;
  }
}

// NPT-like box changes: the bound follows the cell (shrinking, shearing) and stays exact.
TEST(SiteAssigner, FollowsBoxChanges) {
  std::mt19937 rng(9);
  Eigen::Matrix3d h0 = Eigen::Matrix3d::Identity() * 9.0;
  SiteLocator loc(lattice_sites(rng), Box(Eigen::Vector3d::Zero(), h0));
  SiteAssigner fast(loc);
  std::normal_distribution<double> step(0.0, 0.2);
  Eigen::Vector3d x(1.0, 2.0, 3.0);
  SiteImage prev;
  const double r0 = fast.safe_radius();
  for (int t = 0; t < 3000; ++t) {
    const double s = 1.0 - 0.3 * t / 3000.0;  // compress to 70 %, with a growing shear
    Eigen::Matrix3d h = h0 * s;
    h(0, 1) = 2.0 * t / 3000.0;
    loc.set_box(Box(Eigen::Vector3d::Zero(), h));
    fast.refresh();
    x += Eigen::Vector3d(step(rng), step(rng), step(rng));
    const SiteImage got = fast.assign(x, prev);
    expect_same(got, loc.locate(x));
    prev = got;
  }
  EXPECT_LT(fast.safe_radius(), r0);
  EXPECT_GT(fast.fast_hits(), 500u);
  EXPECT_GT(fast.searches() + fast.neighbour_hits(), 100u);
  EXPECT_GT(fast.neighbour_hits(), 100u);
}

// stays() with cached shifted fractional coordinates (fix msm's quiet path): whenever it says
// yes, the full search finds the cached site image, also while the cell changes and far from
// the origin cell; and it says yes for most steps of a walk that stays near its site.
TEST(SiteAssigner, StaysOnlyWhereTheFullSearchAgrees) {
  std::mt19937 rng(21);
  Eigen::Matrix3d h0;
  h0 << 9.0, 1.5, -1.0, 0.0, 8.5, 0.7, 0.0, 0.0, 9.5;
  SiteLocator loc(lattice_sites(rng), Box(Eigen::Vector3d(0.3, -0.2, 1.0), h0));
  SiteAssigner fast(loc);
  std::normal_distribution<double> step(0.0, 0.15);
  std::uniform_int_distribution<int> far(-40, 40);
  std::uint64_t stays = 0, steps = 0;
  for (int atom = 0; atom < 20; ++atom) {
    const Eigen::Vector3d shift(far(rng), far(rng), far(rng));
    Eigen::Vector3d x = loc.box().to_cartesian(Eigen::Vector3d(0.4, 0.1, 0.7) + shift);
    SiteImage prev = loc.locate(x);
    Eigen::Vector3d g = fast.shifted_fractional(prev);
    for (int t = 0; t < 500; ++t, ++steps) {
      if (atom >= 10) {  // NPT-like: the cached g stays valid, the bound follows the cell
        Eigen::Matrix3d h = h0 * (1.0 - 0.1 * t / 500.0);
        h(0, 2) += 0.5 * t / 500.0;
        loc.set_box(Box(Eigen::Vector3d(0.3, -0.2, 1.0), h));
        fast.refresh();
      }
      x += Eigen::Vector3d(step(rng), step(rng), step(rng));
      // a walk pulled back towards its site keeps it near the site, with excursions
      x += 0.2 * (loc.box().to_cartesian(g) - x);
      const SiteImage want = loc.locate(x);
      if (fast.stays(x, g)) {
        ++stays;
        EXPECT_EQ(want.site, prev.site);
        EXPECT_EQ(want.image, prev.image);
      } else {
        expect_same(fast.assign(x, prev), want);
        prev = want;
        g = fast.shifted_fractional(prev);
      }
    }
  }
  EXPECT_GT(stays, steps / 2);
  EXPECT_LT(stays, steps);
}

// The neighbour-list path on its own: positions at distances r from a random previous site image
// p, from inside the safe radius to beyond the neighbour radius, in an orthogonal and a strongly
// triclinic cell (also after a shear and a compression of the cell): always locate()'s answer,
// and all three paths are taken.
TEST(SiteAssigner, NeighbourPathEqualsFullSearch) {
  std::mt19937 rng(21);
  for (int cell = 0; cell < 2; ++cell) {
    Eigen::Matrix3d h;
    h << 10.0, (cell ? 4.5 : 0.0), (cell ? -3.0 : 0.0), 0.0, 9.0, (cell ? 4.0 : 0.0), 0.0, 0.0, 8.0;
    std::vector<Eigen::Vector3d> sites = lattice_sites(rng);
    for (const auto& f : random_sites(20, rng)) sites.push_back(f);  // some close pairs
    SiteLocator loc(sites, Box(Eigen::Vector3d(0.5, -1.0, 2.0), h));
    SiteAssigner fast(loc);
    ASSERT_GT(fast.neighbour_radius(), 2.0 * fast.safe_radius());
    std::uniform_int_distribution<int> site(0, static_cast<int>(sites.size()) - 1), img(-3, 3);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int phase = 0; phase < 3; ++phase) {
      if (phase > 0) {  // shear, then compress (sigma_min >= 0.9: the lists are kept)
        Eigen::Matrix3d h2 = h;
        h2(0, 1) += 0.3 * phase;
        h2 *= 1.0 - 0.04 * phase;
        loc.set_box(Box(Eigen::Vector3d(0.5, -1.0, 2.0), h2));
        fast.refresh();
      }
      const std::uint64_t nh0 = fast.neighbour_hits();
      for (int k = 0; k < 20000; ++k) {
        SiteImage prev;
        prev.site = site(rng);
        prev.image = {img(rng), img(rng), img(rng)};
        const Eigen::Vector3d f = loc.fractional(prev.site);
        const Eigen::Vector3d p =
            loc.box().to_cartesian(Eigen::Vector3d(f[0] + prev.image[0], f[1] + prev.image[1],
                                                   f[2] + prev.image[2]));
        Eigen::Vector3d v(u(rng), u(rng), u(rng));
        v *= 0.65 * fast.neighbour_radius() * std::abs(u(rng)) / v.norm();
        const Eigen::Vector3d x = p + v;
        const SiteImage got = fast.assign(x, prev);
        expect_same(got, loc.locate(x));
      }
      EXPECT_GT(fast.neighbour_hits() - nh0, 5000u) << "phase " << phase;
    }
    EXPECT_GT(fast.fast_hits(), 1000u);
    EXPECT_GT(fast.searches(), 1000u);
  }
}

// Exact ties (several site images at the same distance) resolve as in locate(): lowest site,
// then lexicographically smallest image, whichever tying image was the previous one.
TEST(SiteAssigner, NeighbourPathKeepsTheTieRule) {
  {
    // one site at the cell centre: the 8 images around a cell corner tie
    Box box(Eigen::Vector3d::Zero(), Eigen::Matrix3d::Identity() * 4.0);
    SiteLocator loc({Eigen::Vector3d(0.5, 0.5, 0.5)}, box);
    SiteAssigner fast(loc);
    for (int corner = 0; corner < 8; ++corner) {
      const Eigen::Vector3d x(4.0 * (corner & 1), 4.0 * ((corner >> 1) & 1), 4.0 * (corner >> 2));
      for (int a = -2; a <= 1; ++a)
        for (int b = -2; b <= 1; ++b)
          for (int c = -2; c <= 1; ++c) {
            SiteImage prev;
            prev.site = 0;
            prev.image = {a, b, c};
            expect_same(fast.assign(x, prev), loc.locate(x));
          }
    }
    EXPECT_GE(fast.neighbour_hits(), 64u);  // the 8 images next to each corner
  }
  {
    // two sites mirrored about x = 4: the midpoint plane ties between them
    Box box(Eigen::Vector3d::Zero(), Eigen::Matrix3d::Identity() * 8.0);
    SiteLocator loc({Eigen::Vector3d(0.75, 0.5, 0.5), Eigen::Vector3d(0.25, 0.5, 0.5)}, box);
    SiteAssigner fast(loc);
    for (double y : {4.0, 3.0, 5.5})
      for (double z : {4.0, 2.5})
        for (int s = 0; s < 2; ++s) {
          const Eigen::Vector3d x(4.0, y, z);
          SiteImage prev;
          prev.site = s;
          expect_same(fast.assign(x, prev), loc.locate(x));
          EXPECT_EQ(fast.assign(x, prev).site, 0);
        }
    EXPECT_GT(fast.neighbour_hits(), 10u);
  }
}

}  // namespace
