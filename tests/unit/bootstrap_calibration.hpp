#pragma once
// Calibration of the block bootstrap against independent runs (test_bootstrap.cpp, and the larger
// table of bench/bootstrap_calibration.cpp): walkers on a ring with bond-dependent hop
// probabilities (a random-barrier ring, so that the slowest mode is not degenerate) are
// simulated for real; every run is written as CountsData with blocks, bootstrapped, and its
// point estimates and error bars are compared with the exact D and slowest timescale of the
// model and with the spread of the point estimates over the runs.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "ionmsm/blocks.hpp"
#include "ionmsm/bootstrap.hpp"
#include "ionmsm/connectivity.hpp"
#include "ionmsm/diffusion.hpp"
#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/timescales.hpp"

namespace calibration {

using ionmsm::CountBlock;
using ionmsm::CountsData;
using ionmsm::LagCounts;
using ionmsm::TransitionCount;

/// Non-interacting walkers on a periodic nx x ny x nz lattice (spacing `spacing` on every
/// axis). Per sample a walker at x-index i hops to i + 1 with probability bond_p[i] and to
/// i - 1 with bond_p[i - 1] (bond i joins x-indices i and i + 1: a random-barrier ring, so that
/// the slowest mode is not degenerate), and to each neighbour along y and along z with
/// probability p_yz (ny, nz > 2; for ny = 2 the two neighbours are one site, reached through
/// the +1 and the -1 image). The x motion is autonomous: D_xx and the slowest mode are those of
/// the ring (exact_D_xx, exact_t2) while p_yz is fast enough (ny = nz = 1: the ring alone).
struct RingModel {
  std::vector<double> bond_p = {0.12, 0.05, 0.15, 0.08, 0.02, 0.1};
  int ny = 1, nz = 1;
  double p_yz = 0.0;
  double spacing = 2.0;      ///< A
  double dt_ps = 0.001;      ///< time per sample
  int n_walkers = 8;
  std::vector<std::int64_t> lags = {1, 4};  ///< in samples
  int nx() const { return static_cast<int>(bond_p.size()); }
  int nsites() const { return nx() * ny * nz; }
};

struct RunShape {
  std::size_t n_blocks = 10;
  std::int64_t block_samples = 500;
};

using Key = std::tuple<int, int, int, int, int>;  // from, to, shift x, y, z

/// Sparse rows (sorted by from, to, shift) of a count map.
inline std::vector<TransitionCount> rows_of(const std::map<Key, std::uint64_t>& c) {
  std::vector<TransitionCount> rows;
  for (const auto& [k, v] : c)
    rows.push_back({std::get<0>(k), std::get<1>(k), {std::get<2>(k), std::get<3>(k), std::get<4>(k)}, v});
  return rows;
}

/// The lattice's geometry and units, no counts.
inline CountsData ring_geometry(const RingModel& m) {
  CountsData d;
  d.units = "metal";
  d.timestep = d.timestep_ps = m.dt_ps;
  d.nevery = 1;
  d.box_h = Eigen::Vector3d(m.nx(), m.ny, m.nz).asDiagonal();
  d.box_h *= m.spacing;
  for (int i = 0; i < m.nx(); ++i)
    for (int j = 0; j < m.ny; ++j)
      for (int k = 0; k < m.nz; ++k)
        d.site_fractional.emplace_back((i + 0.5) / m.nx(), (j + 0.5) / m.ny, (k + 0.5) / m.nz);
  return d;
}

/// Unwrapped integer position of a walker.
struct Walker {
  std::int64_t x[3] = {0, 0, 0};
};

/// One run of the model: walkers start from uniformly drawn sites (the stationary
/// distribution); a pair (k - l, k) is counted in the block of its later sample k.
inline CountsData simulate_ring(const RingModel& m, const RunShape& shape, std::uint64_t seed) {
  const int n[3] = {m.nx(), m.ny, m.nz};
  const auto ns = static_cast<std::int64_t>(shape.n_blocks) * shape.block_samples;
  std::mt19937_64 g(seed);
  auto uniform = [&g] { return static_cast<double>(g() >> 11) * 0x1.0p-53; };
  auto wrap = [](std::int64_t x, int len) { return static_cast<int>(((x % len) + len) % len); };
  auto image = [&](std::int64_t x, int len) { return static_cast<int>((x - wrap(x, len)) / len); };
  auto site = [&](const Walker& w) {
    return (wrap(w.x[0], n[0]) * n[1] + wrap(w.x[1], n[1])) * n[2] + wrap(w.x[2], n[2]);
  };
  std::vector<std::vector<Walker>> u(static_cast<std::size_t>(ns),
                                     std::vector<Walker>(static_cast<std::size_t>(m.n_walkers)));
  for (auto& w : u[0])
    for (int a = 0; a < 3; ++a) w.x[a] = static_cast<std::int64_t>(uniform() * n[a]);
  for (std::int64_t k = 1; k < ns; ++k)
    for (std::size_t a = 0; a < u[0].size(); ++a) {
      Walker w = u[static_cast<std::size_t>(k - 1)][a];
      const int i = wrap(w.x[0], n[0]);
      const double up = m.bond_p[static_cast<std::size_t>(i)];
      const double down = m.bond_p[static_cast<std::size_t>((i + n[0] - 1) % n[0])];
      double r = uniform();
      if (r < up) ++w.x[0];
      else if ((r -= up) < down) --w.x[0];
      else if ((r -= down) < 4.0 * m.p_yz) {
        const int axis = 1 + static_cast<int>(r / (2.0 * m.p_yz));
        w.x[axis] += (r - (axis - 1) * 2.0 * m.p_yz) < m.p_yz ? 1 : -1;
      }
      u[static_cast<std::size_t>(k)][a] = w;
    }
  CountsData d = ring_geometry(m);
  const std::size_t nsites = d.nsites();
  d.n_samples = static_cast<std::uint64_t>(ns);
  d.block_steps = shape.block_samples;
  const std::size_t nl = m.lags.size();
  std::vector<std::map<Key, std::uint64_t>> total(nl);
  d.occupancy.assign(nsites, 0);
  for (std::size_t b = 0; b < shape.n_blocks; ++b) {
    CountBlock blk = ionmsm::empty_block(nsites, nl, static_cast<std::int64_t>(b));
    const std::int64_t k0 = static_cast<std::int64_t>(b) * shape.block_samples;
    const std::int64_t k1 = k0 + shape.block_samples;
    blk.n_samples = static_cast<std::uint64_t>(shape.block_samples);
    for (std::int64_t k = k0; k < k1; ++k)
      for (const auto& w : u[static_cast<std::size_t>(k)]) ++blk.occupancy[static_cast<std::size_t>(site(w))];
    for (std::size_t l = 0; l < nl; ++l) {
      std::map<Key, std::uint64_t> c;
      const std::int64_t lag = m.lags[l];
      for (std::int64_t k = std::max(k0, lag); k < k1; ++k) {
        ++blk.n_origins[l];
        for (std::size_t a = 0; a < u[0].size(); ++a) {
          const Walker& w0 = u[static_cast<std::size_t>(k - lag)][a];
          const Walker& w1 = u[static_cast<std::size_t>(k)][a];
          int sh[3];
          for (int x = 0; x < 3; ++x) sh[x] = image(w1.x[x], n[x]) - image(w0.x[x], n[x]);
          ++c[Key{site(w0), site(w1), sh[0], sh[1], sh[2]}];
        }
      }
      for (const auto& [key, v] : c) total[l][key] += v;
      blk.rows[l] = rows_of(c);
    }
    for (std::size_t i = 0; i < nsites; ++i) d.occupancy[i] += blk.occupancy[i];
    d.blocks.push_back(std::move(blk));
  }
  for (std::size_t l = 0; l < nl; ++l) {
    LagCounts lc;
    lc.lag_steps = m.lags[l];
    for (const auto& b : d.blocks) lc.n_origins += b.n_origins[l];
    lc.rows = rows_of(total[l]);
    d.lags.push_back(std::move(lc));
  }
  return d;
}

/// The x ring's one-sample transition matrix, row-stochastic P(from, to).
inline Eigen::MatrixXd ring_matrix(const RingModel& m) {
  const int n = m.nx();
  Eigen::MatrixXd p = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    const double up = m.bond_p[static_cast<std::size_t>(i)];
    const double down = m.bond_p[static_cast<std::size_t>((i + n - 1) % n)];
    p(i, (i + 1) % n) += up;
    p(i, (i + n - 1) % n) += down;
    p(i, i) += 1.0 - up - down;
  }
  return p;
}

/// Exact D_xx of the model (A^2/ps): for a symmetric random-barrier ring the stationary
/// distribution is uniform and the walk on the unwrapped line has D = a^2 / (dt <1/p>), the
/// harmonic mean of the bond hop probabilities (series resistances), up to the discrete-time
/// correction computed here exactly from the Poisson equation (I - P) g = b, b_i = a (p_i -
/// p_{i-1}): Sigma = sum_i pi_i (sum_j P_ij d_ij^2) + 2 sum_ij pi_i P_ij d_ij g_j.
inline double exact_D_xx(const RingModel& m) {
  const int n = m.nx();
  const Eigen::MatrixXd p = ring_matrix(m);
  Eigen::VectorXd b(n);
  for (int i = 0; i < n; ++i)
    b(i) = m.spacing * (m.bond_p[static_cast<std::size_t>(i)] -
                        m.bond_p[static_cast<std::size_t>((i + n - 1) % n)]);
  // (I - P) g = b with sum g = 0 (uniform pi): the bordered system
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n + 1, n + 1);
  a.topLeftCorner(n, n) = Eigen::MatrixXd::Identity(n, n) - p;
  a.block(0, n, n, 1).setOnes();
  a.block(n, 0, 1, n).setOnes();
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(n + 1);
  rhs.head(n) = b;
  const Eigen::VectorXd g = a.fullPivLu().solve(rhs).head(n);
  double sigma = 0.0;
  for (int i = 0; i < n; ++i) {
    const int up = (i + 1) % n, down = (i + n - 1) % n;
    const double d2 = m.spacing * m.spacing;
    sigma += (p(i, up) + p(i, down)) * d2 / n;
    sigma += 2.0 * (p(i, up) * m.spacing * g(up) - p(i, down) * m.spacing * g(down)) / n;
  }
  return sigma / (2.0 * m.dt_ps);
}

/// Exact slowest relaxation timescale (ps): -dt / ln lambda_2 of the symmetric P.
inline double exact_t2(const RingModel& m) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(ring_matrix(m));
  Eigen::VectorXd ev = es.eigenvalues().cwiseAbs();
  std::sort(ev.data(), ev.data() + ev.size(), std::greater<double>());
  return -m.dt_ps / std::log(ev(1));
}

/// Per quantity over the runs: the point estimates, each run's bootstrap sd and whether its
/// interval covered the exact value.
struct QuantityCalibration {
  std::string name;
  double exact = 0.0;
  std::vector<double> point, boot_sd, boot_mean;
  std::size_t covered = 0;
  double mean_point() const {
    double s = 0.0;
    for (double x : point) s += x;
    return s / static_cast<double>(point.size());
  }
  double run_sd() const {  ///< sd of the point estimates over the runs (n - 1)
    const double mu = mean_point();
    double s = 0.0;
    for (double x : point) s += (x - mu) * (x - mu);
    return std::sqrt(s / static_cast<double>(point.size() - 1));
  }
  double rms_boot_sd() const {  ///< root mean square of the runs' bootstrap sd
    double s = 0.0;
    for (double x : boot_sd) s += x * x;
    return std::sqrt(s / static_cast<double>(boot_sd.size()));
  }
  double sd_ratio() const { return rms_boot_sd() / run_sd(); }
  double coverage() const { return static_cast<double>(covered) / static_cast<double>(point.size()); }
  /// Mean over runs of (bootstrap mean - point) / bootstrap sd (runs with sd > 0).
  double mean_boot_bias() const {
    double s = 0.0;
    std::size_t n = 0;
    for (std::size_t r = 0; r < point.size(); ++r)
      if (boot_sd[r] > 0.0) {
        s += (boot_mean[r] - point[r]) / boot_sd[r];
        ++n;
      }
    return n ? s / static_cast<double>(n) : 0.0;
  }
};

struct Calibration {
  QuantityCalibration D_xx, t2;
  std::size_t n_runs = 0, n_failed = 0;
  std::size_t n_fallback = 0;  ///< runs whose lag was resampled (BootstrapLag::method)
};

/// Runs n_runs independent simulations (seeds seed0 + run), bootstraps each and compares the
/// quantities at lag index `lag` with the exact values.
inline Calibration calibrate(const RingModel& m, const RunShape& shape, std::size_t n_runs,
                             const ionmsm::BootstrapOptions& options, std::size_t lag,
                             std::uint64_t seed0) {
  Calibration c;
  c.D_xx.name = "D_xx";
  c.t2.name = "t2";
  c.D_xx.exact = exact_D_xx(m);
  c.t2.exact = exact_t2(m);
  for (std::size_t run = 0; run < n_runs; ++run) {
    const CountsData d = simulate_ring(m, shape, seed0 + run);
    ionmsm::BootstrapOptions o = options;
    o.time_per_step = m.dt_ps;
    o.n_eigenvalues = 2;  // K = 1: the slowest timescale
    const ionmsm::BootstrapResult res = ionmsm::run_bootstrap(d, o);
    const std::vector<double> point = ionmsm::bootstrap_point_estimates(d, lag, o);
    const ionmsm::BootstrapLag* bl = nullptr;
    for (const auto& x : res.lags)
      if (x.index == lag) bl = &x;
    if (!bl) {
      ++c.n_failed;
      continue;
    }
    if (bl->method != o.method) ++c.n_fallback;
    const std::size_t qs[2] = {0, 1 + 0};  // t2, then D_xx (the first transport quantity)
    QuantityCalibration* qc[2] = {&c.t2, &c.D_xx};
    for (int k = 0; k < 2; ++k) {
      const ionmsm::BootstrapSummary s = ionmsm::summarize_bootstrap(bl->values[qs[k]]);
      qc[k]->point.push_back(point[qs[k]]);
      qc[k]->boot_sd.push_back(s.std);
      qc[k]->boot_mean.push_back(s.mean);
      if (s.low <= qc[k]->exact && qc[k]->exact <= s.high) ++qc[k]->covered;
    }
  }
  c.n_runs = n_runs - c.n_failed;
  return c;
}

}  // namespace calibration
