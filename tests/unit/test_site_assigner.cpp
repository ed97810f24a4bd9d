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
    EXPECT_GT(fast.searches(), 100u);
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
  EXPECT_GT(fast.searches(), 100u);
}

}  // namespace
