#pragma once
// Helpers shared by the unit tests of the MSM modules (test_connectivity, test_estimators,
// test_spectrum, test_timescales, test_ck): random and closed-form count matrices.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ionmsm/msm.hpp"

namespace msm_test {


using ionmsm::LagCounts;
using ionmsm::TimescaleStatus;
using SpMat = Eigen::SparseMatrix<double>;
inline constexpr double kPi = 3.14159265358979323846;

// Deterministic uniform [0,1) from mt19937_64 (std::uniform_real_distribution is not
// reproducible across standard libraries).
struct Rng {
  explicit Rng(std::uint64_t seed) : g(seed) {}
  double uniform() { return static_cast<double>(g() >> 11) * 0x1.0p-53; }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * n); }
  std::mt19937_64 g;
};

// LagCounts from an integer-valued count matrix (C(to, from)); `split` spreads each entry over
// two lattice shifts so that the site-level matrix must sum them.
inline LagCounts lag_from_matrix(std::int64_t lag_steps, const Eigen::MatrixXd& c, bool split = false) {
  LagCounts lag;
  lag.lag_steps = lag_steps;
  for (Eigen::Index from = 0; from < c.cols(); ++from)
    for (Eigen::Index to = 0; to < c.rows(); ++to) {
      const auto n = static_cast<std::uint64_t>(std::llround(c(to, from)));
      if (n == 0) continue;
      ionmsm::TransitionCount r;
      r.from = static_cast<ionmsm::SiteIndex>(from);
      r.to = static_cast<ionmsm::SiteIndex>(to);
      if (split && n >= 2) {
        r.count = n / 2;
        lag.rows.push_back(r);
        r.shift = {1, 0, -1};
        r.count = n - n / 2;
      } else {
        r.count = n;
      }
      lag.rows.push_back(r);
    }
  return lag;
}

// Ring of n sites, hop probability p to each neighbour per lag.
inline Eigen::MatrixXd ring_matrix(int n, double p) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  for (int j = 0; j < n; ++j) {
    m(j, j) = 1.0 - 2.0 * p;
    m((j + 1) % n, j) += p;
    m((j + n - 1) % n, j) += p;
  }
  return m;
}

// Closed form for the ring: lambda_k = 1 - 2p + 2p cos(2 pi k / n), sorted decreasingly by
// modulus (ties by real part, which are equal for the degenerate k / n-k pairs).
inline std::vector<double> ring_eigenvalues_sorted(int n, double p) {
  std::vector<double> ev;
  for (int k = 0; k < n; ++k) ev.push_back(1.0 - 2.0 * p + 2.0 * p * std::cos(2.0 * kPi * k / n));
  std::sort(ev.begin(), ev.end(), [](double a, double b) {
    if (std::abs(std::abs(a) - std::abs(b)) > 1e-12) return std::abs(a) > std::abs(b);
    return a > b;
  });
  return ev;
}

inline Eigen::MatrixXd random_counts(int n, Rng& rng, double zero_fraction, int max_count) {
  Eigen::MatrixXd c(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i)
      c(i, j) = rng.uniform() < zero_fraction ? 0.0 : std::floor(1.0 + rng.uniform() * max_count);
  for (int j = 0; j < n; ++j) c(j, j) += 1.0;  // every column non-empty
  return c;
}

inline Eigen::MatrixXd column_normalise(const Eigen::MatrixXd& c) {
  Eigen::MatrixXd m = c;
  for (Eigen::Index j = 0; j < c.cols(); ++j) m.col(j) /= c.col(j).sum();
  return m;
}

inline double max_detailed_balance_violation(const Eigen::MatrixXd& m, const Eigen::VectorXd& pi) {
  double v = 0.0;
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      v = std::max(v, std::abs(pi(j) * m(i, j) - pi(i) * m(j, i)));
  return v;
}

inline double log_likelihood(const Eigen::MatrixXd& c, const Eigen::MatrixXd& m) {
  double l = 0.0;
  for (Eigen::Index i = 0; i < c.rows(); ++i)
    for (Eigen::Index j = 0; j < c.cols(); ++j)
      if (c(i, j) > 0.0) l += c(i, j) * std::log(m(i, j));
  return l;
}

}  // namespace msm_test
