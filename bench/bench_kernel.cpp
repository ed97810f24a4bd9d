// Cost of the in-situ kernels per atom: the nearest-site search and the counting update.
// Run: build/bench/ionmsm_bench_kernel   (results and the command in bench/README.md)
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "ionmsm/counting.hpp"
#include "ionmsm/geometry.hpp"
#include "ionmsm/site_assigner.hpp"

namespace {

// A Li13Si4-like site density: n_side^3 sites on a jittered simple cubic lattice of 2.5 A.
struct Lattice {
  ionmsm::Box box;
  std::vector<Eigen::Vector3d> frac;
  Lattice(int n_side, unsigned seed) {
    const double a = 2.5 * n_side;
    Eigen::Matrix3d h = Eigen::Matrix3d::Zero();
    h(0, 0) = a;
    h(1, 1) = a;
    h(2, 2) = a;
    box = ionmsm::Box(Eigen::Vector3d::Zero(), h);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> jitter(-0.1 / n_side, 0.1 / n_side);
    for (int i = 0; i < n_side; ++i)
      for (int j = 0; j < n_side; ++j)
        for (int k = 0; k < n_side; ++k)
          frac.emplace_back((i + 0.5) / n_side + jitter(rng), (j + 0.5) / n_side + jitter(rng),
                            (k + 0.5) / n_side + jitter(rng));
  }
};

// Positions near sites (thermal rattling of 0.3 A), as in a crystal.
std::vector<Eigen::Vector3d> positions_near_sites(const Lattice& lat, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, lat.frac.size() - 1);
  std::normal_distribution<double> noise(0.0, 0.3);
  std::vector<Eigen::Vector3d> x;
  for (std::size_t i = 0; i < n; ++i) {
    Eigen::Vector3d p = lat.box.to_cartesian(lat.frac[pick(rng)]);
    x.push_back(p + Eigen::Vector3d(noise(rng), noise(rng), noise(rng)));
  }
  return x;
}

void BM_Locate(benchmark::State& state) {
  Lattice lat(static_cast<int>(state.range(0)), 1);
  ionmsm::SiteLocator loc(lat.frac, lat.box);
  auto x = positions_near_sites(lat, 4096, 2);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(loc.locate(x[i & 4095]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["sites"] = static_cast<double>(lat.frac.size());
}
BENCHMARK(BM_Locate)->Arg(6)->Arg(11)->Arg(22);

// The same positions assigned with the previous site as a hint (atoms rattling near a site,
// as between hops): the fast path of SiteAssigner.
void BM_AssignWithHint(benchmark::State& state) {
  Lattice lat(static_cast<int>(state.range(0)), 1);
  ionmsm::SiteLocator loc(lat.frac, lat.box);
  ionmsm::SiteAssigner fast(loc);
  auto x = positions_near_sites(lat, 4096, 2);
  std::vector<ionmsm::SiteImage> prev(4096);
  for (std::size_t i = 0; i < 4096; ++i) prev[i] = loc.locate(x[i]);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fast.assign(x[i & 4095], prev[i & 4095]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["fast_fraction"] =
      static_cast<double>(fast.fast_hits()) / static_cast<double>(fast.fast_hits() + fast.searches());
}
BENCHMARK(BM_AssignWithHint)->Arg(6)->Arg(22);

// One sample for one atom with L lags: read L history slots, count, store the new entry.
// Lags are log-spaced from 1 to 256 samples (full history: 256 x 40 B = 10 KB per atom); the
// history is filled past the longest lag before timing, so every lag counts. Items = atoms x
// lags, so items_per_second gives the cost per atom per lag update. About 1 % of atoms hop per
// sample (a site change), the rest stay.
void BM_CountUpdate(benchmark::State& state) {
  const int nlags = static_cast<int>(state.range(0));
  const std::size_t natoms = static_cast<std::size_t>(state.range(1));
  const std::size_t nsites = 1248;
  std::vector<std::int64_t> lags;
  for (int l = 0; l < nlags; ++l) {
    const auto v = static_cast<std::int64_t>(std::llround(std::pow(256.0, l / (nlags - 1.0))));
    lags.push_back(lags.empty() ? v : std::max(v, lags.back() + 1));
  }
  ionmsm::TransitionCounter counter(nsites, lags);
  const int rec = counter.doubles_per_atom();
  std::vector<double> hist(natoms * static_cast<std::size_t>(rec));
  for (std::size_t a = 0; a < natoms; ++a) counter.clear_history(&hist[a * rec]);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<ionmsm::SiteImage> now(natoms);
  for (std::size_t a = 0; a < natoms; ++a) now[a].site = static_cast<ionmsm::SiteIndex>(a % nsites);
  std::int64_t k = 0;
  auto one_sample = [&]() {
    counter.begin_sample(k++);
    for (std::size_t a = 0; a < natoms; ++a) {
      if (u(rng) < 0.01) now[a].site = static_cast<ionmsm::SiteIndex>((now[a].site + 1) % nsites);
      counter.add_atom_sample(&hist[a * rec], now[a]);
    }
  };
  while (k <= lags.back()) one_sample();  // warm-up: every lag has its origin from now on
  for (auto _ : state) one_sample();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(natoms) * nlags);
  state.counters["bytes_per_atom"] = rec * 8.0;
}
BENCHMARK(BM_CountUpdate)->Args({8, 1000})->Args({32, 1000})->Args({8, 50000})->Args({32, 50000})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
