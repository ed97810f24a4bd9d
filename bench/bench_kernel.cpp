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
  const double tot =
      static_cast<double>(fast.fast_hits() + fast.neighbour_hits() + fast.searches());
  state.counters["fast_fraction"] = static_cast<double>(fast.fast_hits()) / tot;
  state.counters["neighbour_fraction"] = static_cast<double>(fast.neighbour_hits()) / tot;
}
BENCHMARK(BM_AssignWithHint)->Arg(6)->Arg(22);

// The cheap overhead system of bench/README.md: sites on a simple cubic lattice of 2 A (n_side^3
// sites), particles in the periodic potential of bench/overhead.py, U = 0.04 eV sum_k
// cos(2 pi x_k / 2 A) (minima on the sites), at 500 K (kT = 0.0431 eV), so they fill their
// cubic cell broadly and often sit beyond the fast-path radius (1 A). Overdamped Langevin moves
// of `sigma` A per axis per sample (about 0.0014 A at Nevery 1 with the overhead script's
// gamma; larger sigma = longer sampling interval, more hops). The trajectory of 4096 atoms x 64 samples is played forward and back, each atom's
// previous answer fed back as the hint. Counters: fraction of calls per path.
struct BrownianTrajectory {
  ionmsm::Box box;
  std::vector<Eigen::Vector3d> frac;
  std::vector<std::vector<Eigen::Vector3d>> x;  // [sample][atom]
  BrownianTrajectory(int n_side, double sigma, std::size_t natoms, int nsamples, unsigned seed) {
    const double a = 2.0, l = a * n_side, kt = 0.0431, u0 = 0.04;
    box = ionmsm::Box(Eigen::Vector3d::Zero(), Eigen::Matrix3d::Identity() * l);
    for (int i = 0; i < n_side; ++i)
      for (int j = 0; j < n_side; ++j)
        for (int k = 0; k < n_side; ++k)
          frac.emplace_back((i + 0.5) / n_side, (j + 0.5) / n_side, (k + 0.5) / n_side);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::normal_distribution<double> g(0.0, 1.0);
    // start from the Boltzmann distribution of each axis (rejection sampling)
    auto boltzmann_axis = [&]() {
      for (;;) {
        const double y = u(rng) * l;
        if (u(rng) < std::exp(-u0 * (std::cos(2.0 * M_PI * y / a) + 1.0) / kt)) return y;
      }
    };
    std::vector<Eigen::Vector3d> p(natoms);
    for (auto& v : p) v = Eigen::Vector3d(boltzmann_axis(), boltzmann_axis(), boltzmann_axis());
    // overdamped Langevin: dx = (D / kT) F dt + sqrt(2 D dt) xi, sigma^2 = 2 D dt
    const double mob = 0.5 * sigma * sigma / kt;  // D dt / kT
    for (int t = 0; t < nsamples; ++t) {
      for (auto& v : p)
        for (int d = 0; d < 3; ++d) {
          const double f = u0 * 2.0 * M_PI / a * std::sin(2.0 * M_PI * v[d] / a);
          v[d] += mob * f + sigma * g(rng);
        }
      x.push_back(p);
    }
  }
};

void BM_AssignBrownian(benchmark::State& state) {
  const double sigma = static_cast<double>(state.range(1)) * 1e-4;
  BrownianTrajectory tr(static_cast<int>(state.range(0)), sigma, 4096, 64, 7);
  ionmsm::SiteLocator loc(tr.frac, tr.box);
  ionmsm::SiteAssigner fast(loc);
  const std::size_t na = 4096, ns = tr.x.size();
  std::vector<ionmsm::SiteImage> prev(na);
  for (std::size_t a = 0; a < na; ++a) prev[a] = loc.locate(tr.x[0][a]);
  const std::uint64_t f0 = fast.fast_hits(), n0 = fast.neighbour_hits(), s0 = fast.searches();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = i % na, pass = i / na, t = pass % (2 * ns);
    const std::size_t sample = t < ns ? t : 2 * ns - 1 - t;  // forward, then backward
    prev[a] = fast.assign(tr.x[sample][a], prev[a]);
    benchmark::DoNotOptimize(prev[a]);
    ++i;
  }
  const double tot = static_cast<double>(fast.fast_hits() - f0 + fast.neighbour_hits() - n0 +
                                         fast.searches() - s0);
  state.SetItemsProcessed(state.iterations());
  state.counters["sites"] = static_cast<double>(tr.frac.size());
  state.counters["fast"] = static_cast<double>(fast.fast_hits() - f0) / tot;
  state.counters["neighbour"] = static_cast<double>(fast.neighbour_hits() - n0) / tot;
  state.counters["search"] = static_cast<double>(fast.searches() - s0) / tot;
  state.counters["cand_per_nb"] =
      static_cast<double>(fast.neighbour_candidates()) /
      std::max(1.0, static_cast<double>(fast.neighbour_hits()));
}
// (n_side, sigma in 1e-4 A): 37^3 = 50653 sites as in the overhead run; Nevery 1 (0.0014 A),
// and 0.03 A / 0.3 A per sample (many hops)
BENCHMARK(BM_AssignBrownian)->Args({37, 14})->Args({37, 300})->Args({37, 3000})->Args({11, 14});

// Set-up cost of SiteAssigner (safe radius + neighbour lists), once per run (and after a
// large cell change).
void BM_AssignerSetup(benchmark::State& state) {
  BrownianTrajectory tr(static_cast<int>(state.range(0)), 14e-4, 1, 1, 7);
  ionmsm::SiteLocator loc(tr.frac, tr.box);
  std::size_t entries = 0;
  for (auto _ : state) {
    ionmsm::SiteAssigner fast(loc);
    entries = fast.neighbour_entries();
    benchmark::DoNotOptimize(entries);
  }
  state.counters["sites"] = static_cast<double>(tr.frac.size());
  state.counters["entries_per_site"] = static_cast<double>(entries) / tr.frac.size();
}
BENCHMARK(BM_AssignerSetup)->Arg(37)->Unit(benchmark::kMillisecond);

// The same positions with the full search only (what a search costs on these positions).
void BM_LocateBrownian(benchmark::State& state) {
  BrownianTrajectory tr(static_cast<int>(state.range(0)), 14e-4, 4096, 2, 7);
  ionmsm::SiteLocator loc(tr.frac, tr.box);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(loc.locate(tr.x[1][i & 4095]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocateBrownian)->Arg(37);

// Decides which atoms hop, at a cost per hop rather than per atom (the random numbers are not
// part of the counting kernel): the gap to the next hopping atom is geometric with mean 1/p.
struct HopSchedule {
  std::mt19937 rng{3};
  std::geometric_distribution<long> gap;
  long left;
  explicit HopSchedule(double p) : gap(p), left(gap(rng)) {}
  bool next() {  // true for a hopping atom: independent with probability p per call
    if (left-- > 0) return false;
    left = gap(rng);
    return true;
  }
};

// nlags distinct lags, log-spaced from 1 to `longest` samples.
std::vector<std::int64_t> log_lags(int nlags, double longest) {
  std::vector<std::int64_t> lags;
  for (int l = 0; l < nlags; ++l) {
    const auto v = static_cast<std::int64_t>(std::llround(std::pow(longest, l / (nlags - 1.0))));
    lags.push_back(lags.empty() ? v : std::max(v, lags.back() + 1));
  }
  return lags;
}

// Drives a counter over `now` (initial sites set by the caller): per sample, move(atom, site
// image) may change an atom's entry, then every atom is added. The histories are filled past
// the longest lag before timing, so every lag counts; counts are integrated lazily
// (event-driven full history), so reading them once per 100 samples is included (fix msm reads
// at block boundaries and outputs, far less often). Items = atoms x lags: items_per_second
// gives the cost per atom per lag update.
template <typename Move>
void run_counting(benchmark::State& state, std::size_t nsites, const std::vector<std::int64_t>& lags,
                  std::vector<ionmsm::SiteImage>& now, Move move,
                  ionmsm::HistoryConfig history = ionmsm::HistoryConfig::full()) {
  ionmsm::TransitionCounter counter(nsites, lags, history);
  const std::size_t natoms = now.size();
  const int rec = counter.doubles_per_atom();
  std::vector<double> hist(natoms * static_cast<std::size_t>(rec));
  for (std::size_t a = 0; a < natoms; ++a) counter.clear_history(&hist[a * rec]);
  std::int64_t k = 0;
  auto one_sample = [&]() {
    counter.begin_sample(k++);
    for (std::size_t a = 0; a < natoms; ++a) {
      move(now[a]);
      counter.add_atom_sample(&hist[a * rec], now[a]);
    }
    if (k % 100 == 0) counter.settle();
  };
  while (k <= lags.back()) one_sample();  // warm-up: every lag has its origin from now on
  for (auto _ : state) one_sample();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(natoms) *
                          static_cast<std::int64_t>(lags.size()));
  state.counters["bytes_per_atom"] = rec * 8.0;
}

// One sample for one atom with L lags (event-driven: work only where a lag pair changes).
// Lags are log-spaced from 1 to 256 samples; about 1 % of atoms hop per sample (a site
// change), the rest stay.
void BM_CountUpdate(benchmark::State& state) {
  const std::size_t natoms = static_cast<std::size_t>(state.range(1));
  const std::size_t nsites = 1248;
  HopSchedule hops(0.01);
  std::vector<ionmsm::SiteImage> now(natoms);
  for (std::size_t a = 0; a < natoms; ++a) now[a].site = static_cast<ionmsm::SiteIndex>(a % nsites);
  run_counting(state, nsites, log_lags(static_cast<int>(state.range(0)), 256.0), now,
               [&](ionmsm::SiteImage& p) {
                 if (hops.next()) p.site = static_cast<ionmsm::SiteIndex>((p.site + 1) % nsites);
               });
}
BENCHMARK(BM_CountUpdate)->Args({8, 1000})->Args({32, 1000})->Args({8, 50000})->Args({32, 50000})
    ->Unit(benchmark::kMillisecond);

// The cheap overhead system's counting (bench/README.md): 50653 sites, atoms in LAMMPS-sorted
// order (site index increasing with the atom index), lags log-spaced from 1 to 64 samples as
// in bench/overhead.py. Per sample, `hop` per mille of the atoms move to a neighbouring site,
// crossing the periodic boundary (image change) for 1 in 37 of those moves.
constexpr std::size_t kCheapSites = 50653;  // 37^3

// natoms spread over the cheap system's sites in LAMMPS-sorted order
std::vector<ionmsm::SiteImage> cheap_start(std::size_t natoms) {
  std::vector<ionmsm::SiteImage> now(natoms);
  for (std::size_t a = 0; a < natoms; ++a)
    now[a].site = static_cast<ionmsm::SiteIndex>(a * kCheapSites / natoms);
  return now;
}

void BM_CountUpdateCheap(benchmark::State& state) {
  const std::size_t natoms = static_cast<std::size_t>(state.range(1));
  const double hop = static_cast<double>(state.range(2)) * 1e-3;
  const std::size_t nsites = kCheapSites;
  HopSchedule hops(hop);
  std::uniform_int_distribution<int> dir(0, 5);
  std::vector<ionmsm::SiteImage> now = cheap_start(natoms);
  run_counting(state, nsites, log_lags(static_cast<int>(state.range(0)), 64.0), now,
               [&](ionmsm::SiteImage& p) {
                 if (!hops.next()) return;
                 const int d = dir(hops.rng), axis = d / 2, sgn = (d % 2) ? 1 : -1;
                 int c[3] = {p.site / (37 * 37), (p.site / 37) % 37, p.site % 37};
                 c[axis] += sgn;
                 if (c[axis] < 0 || c[axis] > 36) {
                   p.image[static_cast<std::size_t>(axis)] += sgn;
                   c[axis] = (c[axis] + 37) % 37;
                 }
                 p.site = static_cast<ionmsm::SiteIndex>((c[0] * 37 + c[1]) * 37 + c[2]);
               });
}
// The same system with history multitau 16 (every atom's pairs counted at every sample, no
// events): lags 1 2 3 6 10 20 36 64 samples (levels 0 0 0 0 0 1 2 2), `hop` per mille.
void BM_CountUpdateCheapMultiTau(benchmark::State& state) {
  const std::size_t natoms = static_cast<std::size_t>(state.range(0));
  const double hop = static_cast<double>(state.range(1)) * 1e-3;
  const std::size_t nsites = kCheapSites;
  HopSchedule hops(hop);
  std::vector<ionmsm::SiteImage> now = cheap_start(natoms);
  run_counting(state, nsites, {1, 2, 3, 6, 10, 20, 36, 64}, now,
               [&](ionmsm::SiteImage& p) {
                 if (!hops.next()) return;
                 p.site = static_cast<ionmsm::SiteIndex>((p.site + 1) % nsites);
                 if (p.site == 0) ++p.image[0];
               },
               ionmsm::HistoryConfig::multitau(16));
}
BENCHMARK(BM_CountUpdateCheapMultiTau)->Args({50000, 2})->Unit(benchmark::kMillisecond);

BENCHMARK(BM_CountUpdateCheap)->Args({8, 50000, 2})->Args({32, 50000, 2})->Args({8, 50000, 50})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
