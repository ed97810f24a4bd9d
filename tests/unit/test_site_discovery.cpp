// Unit tests of site discovery from a periodic density (src/ionmsm/site_discovery.*).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "ionmsm/site_discovery.hpp"

using ionmsm::Box;
using ionmsm::DensityGrid;
using ionmsm::discover_sites;
using ionmsm::periodic_distance;
using ionmsm::SiteDiscovery;
using ionmsm::SiteDiscoveryOptions;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Well {
  Eigen::Vector3d frac;
  double number;  // ions in the well
};

Box triclinic_box() {
  Eigen::Matrix3d h;
  h << 10.0, 2.0, -1.5, 0.0, 9.0, 1.0, 0.0, 0.0, 8.0;
  return Box(Eigen::Vector3d(1.0, -2.0, 0.5), h);
}

// Random wells at least `min_sep` apart (periodic), reproducible.
std::vector<Well> random_wells(const Box& box, int n, double min_sep, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Well> wells;
  while (static_cast<int>(wells.size()) < n) {
    const Eigen::Vector3d f(u(rng), u(rng), u(rng));
    bool ok = true;
    for (const Well& w : wells) ok = ok && periodic_distance(box, f, w.frac) >= min_sep;
    if (ok) wells.push_back({f, 1.0 + 3.0 * u(rng)});
  }
  return wells;
}

DensityGrid empty_grid(const Box& box, std::array<int, 3> n) {
  DensityGrid g;
  g.box = box;
  g.n = n;
  g.density.assign(static_cast<std::size_t>(n[0]) * n[1] * n[2], 0.0);
  return g;
}

// Density of normalised Gaussians of width sigma, evaluated at the cell centres.
DensityGrid gaussian_grid(const Box& box, std::array<int, 3> n, const std::vector<Well>& wells,
                          double sigma) {
  DensityGrid g = empty_grid(box, n);
  const double norm = 1.0 / std::pow(2.0 * kPi * sigma * sigma, 1.5);
  for (std::size_t i = 0; i < g.size(); ++i)
    for (const Well& w : wells) {
      const double d = periodic_distance(box, g.cell_center(i), w.frac);
      g.density[i] += w.number * norm * std::exp(-0.5 * d * d / (sigma * sigma));
    }
  return g;
}

// Histogram of `samples` points drawn from the wells (Gaussian, width sigma) plus a uniform
// background holding `background` of them, as number density averaged over `frames` frames.
DensityGrid sampled_grid(const Box& box, std::array<int, 3> n, const std::vector<Well>& wells,
                         double sigma, long samples, double background, unsigned seed) {
  DensityGrid g = empty_grid(box, n);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, sigma);
  double weight_sum = 0.0;
  for (const Well& w : wells) weight_sum += w.number;
  for (long s = 0; s < samples; ++s) {
    Eigen::Vector3d f(u(rng), u(rng), u(rng));
    if (u(rng) >= background) {
      double pick = u(rng) * weight_sum;
      std::size_t k = 0;
      while (k + 1 < wells.size() && pick > wells[k].number) pick -= wells[k++].number;
      const Eigen::Vector3d dx(normal(rng), normal(rng), normal(rng));
      f = wells[k].frac + box.h_inverse() * dx;
    }
    int c[3];
    for (int d = 0; d < 3; ++d) {
      const double w = f[d] - std::floor(f[d]);
      c[d] = std::min(n[static_cast<std::size_t>(d)] - 1,
                      static_cast<int>(w * n[static_cast<std::size_t>(d)]));
    }
    g.density[g.index(c[0], c[1], c[2])] += 1.0;
  }
  // One "frame" holds all samples' worth of ions: density = count / (frames * cell volume) with
  // frames = samples / ions; take ions = 100 so the total number integrates to 100.
  const double frames = static_cast<double>(samples) / 100.0;
  for (double& v : g.density) v /= frames * g.cell_volume();
  return g;
}

// Index of the found site nearest to f, and its distance.
std::pair<int, double> nearest_site(const Box& box, const SiteDiscovery& r,
                                    const Eigen::Vector3d& f) {
  int best = -1;
  double best_d = 1e300;
  for (std::size_t s = 0; s < r.sites.size(); ++s) {
    const double d = periodic_distance(box, r.sites[s].fractional, f);
    if (d < best_d) best_d = d, best = static_cast<int>(s);
  }
  return {best, best_d};
}

}  // namespace

TEST(SiteDiscovery, PeriodicDistanceMatchesBruteForceOverImages) {
  const Box box = triclinic_box();
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-1.5, 2.5);
  for (int t = 0; t < 200; ++t) {
    const Eigen::Vector3d a(u(rng), u(rng), u(rng)), b(u(rng), u(rng), u(rng));
    double brute = 1e300;
    for (int i = -5; i <= 5; ++i)
      for (int j = -5; j <= 5; ++j)
        for (int k = -5; k <= 5; ++k)
          brute = std::min(brute, (box.h() * (a - b + Eigen::Vector3d(i, j, k))).norm());
    EXPECT_NEAR(periodic_distance(box, a, b), brute, 1e-12);
  }
}

TEST(SiteDiscovery, ExactGaussianWellsInTriclinicCellAreFoundAtTheirCentres) {
  const Box box = triclinic_box();
  const double sigma = 0.5;
  const std::vector<Well> wells = random_wells(box, 7, 7.0 * sigma, 11);
  const DensityGrid g = gaussian_grid(box, {40, 36, 32}, wells, sigma);
  SiteDiscoveryOptions opt;
  opt.min_separation = 1.0;
  opt.min_occupancy = 0.1;
  const SiteDiscovery r = discover_sites(g, opt);
  ASSERT_EQ(r.sites.size(), wells.size());
  EXPECT_TRUE(r.dropped.empty());
  double total = 0.0;
  for (const Well& w : wells) total += w.number;
  EXPECT_NEAR(r.total_number, total, 1e-3 * total);
  std::vector<int> hit(wells.size(), 0);
  for (const Well& w : wells) {
    const auto [s, d] = nearest_site(box, r, w.frac);
    EXPECT_LT(d, 0.02 * sigma);
    ++hit[static_cast<std::size_t>(s)];
    // the basin holds the well's ions (tails beyond the basin are negligible at 7 sigma)
    EXPECT_NEAR(r.sites[static_cast<std::size_t>(s)].occupancy, w.number, 0.01 * w.number);
    EXPECT_EQ(r.sites[static_cast<std::size_t>(s)].seed, -1);
  }
  for (int h : hit) EXPECT_EQ(h, 1);
}

TEST(SiteDiscovery, SampledWellsWithBackgroundNoiseGiveNoExtraSites) {
  const Box box = triclinic_box();
  const double sigma = 0.5;
  const std::vector<Well> wells = random_wells(box, 8, 7.0 * sigma, 5);
  const DensityGrid g = sampled_grid(box, {40, 36, 32}, wells, sigma, 2000000, 0.03, 17);
  SiteDiscoveryOptions opt;
  opt.min_separation = 2.0 * sigma;
  opt.min_occupancy = 1.0;  // each well holds about 100 * 0.97 * w / sum(w) >= 4 ions
  const SiteDiscovery r = discover_sites(g, opt);
  EXPECT_GT(r.n_maxima, wells.size());  // the noise makes extra maxima that must go
  ASSERT_EQ(r.sites.size(), wells.size());
  for (const Well& w : wells) {
    const auto [s, d] = nearest_site(box, r, w.frac);
    EXPECT_LT(d, 0.1 * sigma) << "well at " << w.frac.transpose();
  }
  double kept = 0.0;
  for (const auto& s : r.sites) kept += s.occupancy;
  EXPECT_NEAR(kept + r.dropped_occupancy, r.total_number, 1e-9 * r.total_number);
}

TEST(SiteDiscovery, ContrastRemovesMergedNoiseOfAStrongBackground) {
  // Half of the ions spread uniformly: merging within 2 A gathers the background's noise
  // maxima into pseudo-sites holding several ions each, which only the contrast test removes.
  const Box box = triclinic_box();
  const double sigma = 0.3;
  const std::vector<Well> wells = random_wells(box, 6, 10.0 * sigma, 41);
  const DensityGrid g = sampled_grid(box, {40, 36, 32}, wells, sigma, 400000, 0.5, 29);
  SiteDiscoveryOptions opt;
  opt.min_separation = 2.0;
  opt.min_occupancy = 0.5;
  const SiteDiscovery noisy = discover_sites(g, opt);
  EXPECT_GT(noisy.sites.size(), wells.size() + 5);
  opt.min_contrast = 5.0;
  const SiteDiscovery r = discover_sites(g, opt);
  EXPECT_NEAR(r.mean_density, 100.0 / box.volume(), 1e-9);
  ASSERT_EQ(r.sites.size(), wells.size());
  for (const Well& w : wells) EXPECT_LT(nearest_site(box, r, w.frac).second, 0.1 * sigma);
  double kept = 0.0;
  for (const auto& s : r.sites) {
    EXPECT_GE(s.peak_density, 5.0 * r.mean_density);
    EXPECT_DOUBLE_EQ(s.contrast, s.peak_density / r.mean_density);
    kept += s.occupancy;
  }
  EXPECT_NEAR(r.kept_occupancy, kept, 1e-12 * kept);
  for (const auto& s : r.dropped)
    EXPECT_TRUE(s.peak_density < 5.0 * r.mean_density || s.occupancy < 0.5);
}

TEST(SiteDiscovery, PeakAcrossThePeriodicBoundaryIsFoundOnce) {
  const Box box = triclinic_box();
  const double sigma = 0.5;
  // on a corner of the cell (all eight corners are one point), and on a face
  const std::vector<Well> wells = {{Eigen::Vector3d(0.0, 0.0, 0.0), 2.0},
                                   {Eigen::Vector3d(0.5, 0.999, 0.5), 1.0}};
  const DensityGrid g = gaussian_grid(box, {40, 36, 32}, wells, sigma);
  SiteDiscoveryOptions opt;  // no merging at all: the one peak must give one maximum
  const SiteDiscovery r = discover_sites(g, opt);
  ASSERT_EQ(r.n_maxima, 2u);
  ASSERT_EQ(r.sites.size(), 2u);
  for (const Well& w : wells) {
    const auto [s, d] = nearest_site(box, r, w.frac);
    EXPECT_LT(d, 0.02 * sigma);
    EXPECT_NEAR(r.sites[static_cast<std::size_t>(s)].occupancy, w.number, 0.01 * w.number);
  }
  for (const auto& s : r.sites)
    for (int k = 0; k < 3; ++k) {
      EXPECT_GE(s.fractional[k], 0.0);
      EXPECT_LT(s.fractional[k], 1.0);
    }
}

TEST(SiteDiscovery, PlateauGivesOneMaximumAndBasinsCoverPositiveCells) {
  const Box box = triclinic_box();
  DensityGrid g = empty_grid(box, {6, 5, 4});
  g.density[g.index(2, 2, 2)] = 3.0;  // a flat-topped peak of two cells
  g.density[g.index(3, 2, 2)] = 3.0;
  g.density[g.index(4, 2, 2)] = 1.0;
  g.density[g.index(0, 0, 0)] = 0.5;  // a lone cell: its own maximum
  const std::vector<std::size_t> maxima = ionmsm::grid_maxima(g);
  ASSERT_EQ(maxima.size(), 2u);
  EXPECT_EQ(maxima[0], g.index(0, 0, 0));
  EXPECT_EQ(maxima[1], g.index(2, 2, 2));
  const std::vector<std::int32_t> basin = ionmsm::grid_basins(g, maxima);
  EXPECT_EQ(basin[g.index(3, 2, 2)], 1);
  EXPECT_EQ(basin[g.index(4, 2, 2)], 1);
  EXPECT_EQ(basin[g.index(0, 0, 0)], 0);
  EXPECT_EQ(basin[g.index(1, 1, 1)], -1);  // zero density: no basin
}

TEST(SiteDiscovery, MergesCloseMaximaAndDropsLowOccupancy) {
  const Box box = triclinic_box();
  const double sigma = 0.4;
  // two wells 1.6 apart (distinct maxima), one weak well far away
  const Eigen::Vector3d a(0.3, 0.3, 0.3);
  const Eigen::Vector3d b = a + box.h_inverse() * Eigen::Vector3d(1.6, 0.0, 0.0);
  const std::vector<Well> wells = {{a, 3.0}, {b, 2.0}, {Eigen::Vector3d(0.8, 0.7, 0.8), 0.2}};
  const DensityGrid g = gaussian_grid(box, {40, 36, 32}, wells, sigma);
  SiteDiscoveryOptions opt;
  const SiteDiscovery all = discover_sites(g, opt);
  ASSERT_EQ(all.sites.size(), 3u);

  opt.min_separation = 2.0;
  opt.min_occupancy = 0.5;
  const SiteDiscovery r = discover_sites(g, opt);
  ASSERT_EQ(r.sites.size(), 1u);
  ASSERT_EQ(r.dropped.size(), 1u);
  EXPECT_LT(periodic_distance(box, r.dropped[0].fractional, wells[2].frac), 0.05);
  EXPECT_EQ(r.sites[0].n_maxima, 2);
  // the higher peak keeps its position, the lower one adds its ions
  EXPECT_LT(periodic_distance(box, r.sites[0].fractional, a), 0.05);
  EXPECT_NEAR(r.sites[0].occupancy, 5.0, 0.05);
  EXPECT_NEAR(r.dropped_occupancy, 0.2, 0.01);
}

TEST(SiteDiscovery, SeedsComeFirstAndOnlyExtraSitesAreAdded) {
  const Box box = triclinic_box();
  const double sigma = 0.5;
  const std::vector<Well> wells = random_wells(box, 5, 7.0 * sigma, 23);
  const DensityGrid g = gaussian_grid(box, {40, 36, 32}, wells, sigma);
  SiteDiscoveryOptions opt;
  opt.min_separation = 1.0;
  // seeds: two wells (slightly off, and shifted by a lattice vector) and an empty place
  opt.seeds_fractional = {wells[0].frac + Eigen::Vector3d(1.0, 0.0, -1.0) +
                              box.h_inverse() * Eigen::Vector3d(0.2, 0.0, 0.0),
                          wells[3].frac, Eigen::Vector3d(0.123, 0.5, 0.5)};
  for (const Well& w : wells)
    ASSERT_GT(periodic_distance(box, w.frac, opt.seeds_fractional[2]), 2.0);
  opt.min_occupancy = 0.1;
  const SiteDiscovery r = discover_sites(g, opt);
  ASSERT_EQ(r.sites.size(), 3u + 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(r.sites[static_cast<std::size_t>(s)].seed, s);
    EXPECT_LT(periodic_distance(box, r.sites[static_cast<std::size_t>(s)].fractional,
                                opt.seeds_fractional[static_cast<std::size_t>(s)]),
              1e-12);
  }
  EXPECT_NEAR(r.sites[0].occupancy, wells[0].number, 0.01 * wells[0].number);
  EXPECT_NEAR(r.sites[1].occupancy, wells[3].number, 0.01 * wells[3].number);
  EXPECT_EQ(r.sites[2].occupancy, 0.0);  // kept although empty
  EXPECT_EQ(r.sites[2].n_maxima, 0);
  for (std::size_t k : {1u, 2u, 4u}) {
    const auto [s, d] = nearest_site(box, r, wells[k].frac);
    EXPECT_GE(s, 3);
    EXPECT_LT(d, 0.02 * sigma);
  }
}

TEST(SiteDiscovery, RejectsBadOptionsAndTinyGrids) {
  const Box box = triclinic_box();
  DensityGrid g = empty_grid(box, {4, 4, 4});
  SiteDiscoveryOptions opt;
  opt.min_separation = -1.0;
  EXPECT_THROW(discover_sites(g, opt), std::invalid_argument);
  opt.min_separation = 0.0;
  opt.min_occupancy = std::nan("");
  EXPECT_THROW(discover_sites(g, opt), std::invalid_argument);
  opt.min_contrast = -1.0;
  EXPECT_THROW(discover_sites(g, opt), std::invalid_argument);
  opt.min_contrast = 0.0;
  opt.min_occupancy = 0.0;
  opt.seeds_fractional = {Eigen::Vector3d(0.0, std::nan(""), 0.0)};
  EXPECT_THROW(discover_sites(g, opt), std::invalid_argument);
  DensityGrid tiny = empty_grid(box, {4, 2, 4});
  try {
    discover_sites(tiny, SiteDiscoveryOptions{});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("4 x 2 x 4"), std::string::npos) << e.what();
  }
}

TEST(SiteDiscovery, FractionWithinCountsCellCentresInsideTheCores) {
  const Box box = triclinic_box();
  DensityGrid g = empty_grid(box, {10, 10, 10});
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double& v : g.density) v = u(rng) < 0.3 ? 0.0 : u(rng);
  const std::vector<Eigen::Vector3d> sites = {Eigen::Vector3d(0.02, 0.5, 0.97),
                                              Eigen::Vector3d(0.6, 0.1, 0.3)};
  const double radius = 2.2;
  double inside = 0.0, total = 0.0;  // brute force over cells and sites
  for (std::size_t i = 0; i < g.size(); ++i) {
    total += g.density[i];
    bool in = false;
    for (const auto& s : sites) in = in || periodic_distance(box, g.cell_center(i), s) <= radius;
    if (in) inside += g.density[i];
  }
  EXPECT_GT(inside, 0.0);
  EXPECT_LT(inside, total);
  EXPECT_NEAR(ionmsm::fraction_within(g, sites, radius), inside / total, 1e-12);
  EXPECT_THROW(ionmsm::fraction_within(g, {}, radius), std::invalid_argument);
}
