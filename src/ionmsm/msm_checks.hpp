#pragma once
// Internal to the MSM sources (connectivity, estimators, spectrum, timescales, ck): argument
// checks that throw std::invalid_argument naming the function, and exact column sums.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/text.hpp"

namespace ionmsm::detail {

using SpMat = Eigen::SparseMatrix<double>;
using Index = Eigen::Index;
using text::num;

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

inline constexpr double kStochasticTolerance = 1e-8;

[[noreturn]] inline void fail(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string("ionmsm::") + function + ": " + what);
}

inline void check_square(Index rows, Index cols, const char* function, const char* what) {
  if (rows != cols) {
    fail(function, std::string(what) + " must be square, got " + std::to_string(rows) + " x " +
                       std::to_string(cols));
  }
}

inline void check_count_value(double v, Index i, Index j, const char* function) {
  if (!std::isfinite(v) || v < 0.0) {
    fail(function, "count C(" + std::to_string(i) + ", " + std::to_string(j) + ") = " + num(v) +
                       " is negative or not finite");
  }
}

inline void check_counts(const Eigen::MatrixXd& c, const char* function) {
  check_square(c.rows(), c.cols(), function, "the count matrix");
  for (Index j = 0; j < c.cols(); ++j)
    for (Index i = 0; i < c.rows(); ++i) check_count_value(c(i, j), i, j, function);
}

inline void check_counts(const SpMat& c, const char* function) {
  check_square(c.rows(), c.cols(), function, "the count matrix");
  for (Index j = 0; j < c.outerSize(); ++j)
    for (SpMat::InnerIterator it(c, j); it; ++it)
      check_count_value(it.value(), it.row(), it.col(), function);
}

inline void check_finite(const Eigen::MatrixXd& m, const char* function, const char* what) {
  if (!m.allFinite()) fail(function, std::string(what) + " has a non-finite entry");
}

inline void check_finite(const SpMat& m, const char* function, const char* what) {
  for (Index j = 0; j < m.outerSize(); ++j)
    for (SpMat::InnerIterator it(m, j); it; ++it)
      if (!std::isfinite(it.value())) fail(function, std::string(what) + " has a non-finite entry");
}

// Sequential column sums (same order for dense and sparse, so both give identical numbers).
inline Eigen::VectorXd column_sums(const Eigen::MatrixXd& m) {
  Eigen::VectorXd s(m.cols());
  for (Index j = 0; j < m.cols(); ++j) {
    double acc = 0.0;
    for (Index i = 0; i < m.rows(); ++i) acc += m(i, j);
    s(j) = acc;
  }
  return s;
}

inline Eigen::VectorXd column_sums(const SpMat& m) {
  Eigen::VectorXd s = Eigen::VectorXd::Zero(m.cols());
  for (Index j = 0; j < m.outerSize(); ++j) {
    double acc = 0.0;
    for (SpMat::InnerIterator it(m, j); it; ++it) acc += it.value();
    s(j) = acc;
  }
  return s;
}

inline void check_column_stochastic(const Eigen::VectorXd& sums, const char* function) {
  for (Index j = 0; j < sums.size(); ++j) {
    if (!(std::abs(sums(j) - 1.0) <= kStochasticTolerance)) {
      fail(function, "the transition matrix is not column-stochastic: column " +
                         std::to_string(j) + " sums to " + num(sums(j), 12) +
                         " (convention: M(i,j) = P(j -> i), columns sum to 1)");
    }
  }
}

inline void check_lag_rows(const LagCounts& lag, std::size_t nsites, const char* function) {
  for (std::size_t k = 0; k < lag.rows.size(); ++k) {
    const TransitionCount& r = lag.rows[k];
    if (r.from < 0 || r.to < 0 || static_cast<std::size_t>(r.from) >= nsites ||
        static_cast<std::size_t>(r.to) >= nsites) {
      fail(function, "lag " + std::to_string(lag.lag_steps) + " row " + std::to_string(k) +
                         ": site index (from " + std::to_string(r.from) + ", to " +
                         std::to_string(r.to) + ") out of range for " + std::to_string(nsites) +
                         " sites");
    }
  }
}

inline void check_site_list(const std::vector<std::size_t>& sites, Index n, const char* function) {
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (std::size_t s : sites) {
    if (s >= static_cast<std::size_t>(n))
      fail(function, "site " + std::to_string(s) + " out of range for a matrix of size " +
                         std::to_string(n));
    if (seen[s]) fail(function, "site " + std::to_string(s) + " listed twice");
    seen[s] = 1;
  }
}

/// The checks every function taking a transition matrix starts with, in this order: square,
/// non-empty (else `empty_message`), finite, column-stochastic.
template <class Matrix>
void check_transition_matrix(const Matrix& m, const char* function, const char* empty_message) {
  check_square(m.rows(), m.cols(), function, "the transition matrix");
  if (m.rows() == 0) fail(function, empty_message);
  check_finite(m, function, "the transition matrix");
  check_column_stochastic(column_sums(m), function);
}

}  // namespace ionmsm::detail
