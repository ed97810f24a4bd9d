// Estimators and stationary distributions: see estimators.hpp.
#include "ionmsm/estimators.hpp"

#include <Eigen/IterativeLinearSolvers>
#include <Eigen/LU>
#include <Eigen/QR>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/msm_checks.hpp"
#include "ionmsm/parallel.hpp"

namespace ionmsm {

using namespace detail;

namespace {

// stationary_distribution (sparse): SparseLU up to this many sites, BiCGSTAB above.
constexpr std::size_t kStationaryDirectMaxSites = 2000;

}  // namespace

Eigen::MatrixXd nonreversible_mle(const Eigen::MatrixXd& counts) {
  const char* fn = "nonreversible_mle";
  check_counts(counts, fn);
  const Eigen::VectorXd s = column_sums(counts);
  Eigen::MatrixXd m(counts.rows(), counts.cols());
  for (Index j = 0; j < counts.cols(); ++j) {
    if (!(s(j) > 0.0))
      fail(fn, "column " + std::to_string(j) +
                   " has no counts (site never left): restrict to largest_connected_set first");
    for (Index i = 0; i < counts.rows(); ++i) m(i, j) = counts(i, j) / s(j);
  }
  return m;
}

Eigen::SparseMatrix<double> nonreversible_mle(const Eigen::SparseMatrix<double>& counts) {
  const char* fn = "nonreversible_mle";
  check_counts(counts, fn);
  SpMat m = counts;
  m.makeCompressed();
  const Eigen::VectorXd s = column_sums(m);
  for (Index j = 0; j < m.outerSize(); ++j) {
    if (!(s(j) > 0.0))
      fail(fn, "column " + std::to_string(j) +
                   " has no counts (site never left): restrict to largest_connected_set first");
    for (SpMat::InnerIterator it(m, j); it; ++it) it.valueRef() = it.value() / s(j);
  }
  return m;
}

namespace {

Eigen::VectorXd finish_stationary(Eigen::VectorXd x, const char* fn) {
  if (!x.allFinite())
    fail(fn, "singular system: the transition matrix is reducible (restrict to "
             "largest_connected_set first)");
  const double scale = x.cwiseAbs().maxCoeff();
  for (Index i = 0; i < x.size(); ++i) {
    if (x(i) < -1e-8 * scale)
      fail(fn, "negative stationary weight " + num(x(i) / x.sum()) + " at index " +
                   std::to_string(i) + ": the transition matrix is reducible (restrict to "
                   "largest_connected_set first)");
    if (x(i) < 0.0) x(i) = 0.0;
  }
  const double sum = x.sum();
  if (!(sum > 0.0)) fail(fn, "stationary distribution sums to zero: reducible matrix");
  return x / sum;
}

void check_stationary_residual(const Eigen::VectorXd& pi, const Eigen::VectorXd& mpi,
                               const char* fn) {
  const double res = (mpi - pi).lpNorm<1>();
  if (!(res <= 1e-6))
    fail(fn, "stationary solve failed (||M pi - pi||_1 = " + num(res) +
                 "): the transition matrix is reducible or extremely ill-conditioned");
}

}  // namespace

Eigen::VectorXd stationary_distribution(const Eigen::MatrixXd& m) {
  const char* fn = "stationary_distribution";
  check_transition_matrix(m, fn, "empty transition matrix");
  const Index n = m.rows();
  if (n == 1) return Eigen::VectorXd::Ones(1);
  // Pin pi_{n-1} = 1: (I - M_sub) x = M(0:n-2, n-1).
  const Index k = n - 1;
  const Eigen::MatrixXd a = Eigen::MatrixXd::Identity(k, k) - m.topLeftCorner(k, k);
  const Eigen::VectorXd b = m.col(k).head(k);
  Eigen::PartialPivLU<Eigen::MatrixXd> lu(a);
  {  // Eigen's LU neither fails nor yields inf on a zero pivot: check U's diagonal ourselves
    const Eigen::VectorXd u = lu.matrixLU().diagonal().cwiseAbs();
    if (!(u.minCoeff() > std::numeric_limits<double>::epsilon() * static_cast<double>(n) *
                             u.maxCoeff()))
      fail(fn, "singular system: the stationary distribution is not unique (reducible "
               "transition matrix; restrict to largest_connected_set first)");
  }
  Eigen::VectorXd y = lu.solve(b);
  y += lu.solve(Eigen::VectorXd(b - a * y));  // one step of iterative refinement
  Eigen::VectorXd x(n);
  x << y, 1.0;
  Eigen::VectorXd pi = finish_stationary(x, fn);
  check_stationary_residual(pi, m * pi, fn);
  return pi;
}

Eigen::VectorXd stationary_distribution(const Eigen::SparseMatrix<double>& m) {
  const char* fn = "stationary_distribution";
  check_transition_matrix(m, fn, "empty transition matrix");
  const Index n = m.rows();
  if (n == 1) return Eigen::VectorXd::Ones(1);
  // Pin pi_{n-1} = 1: (I - M_sub) x = M(0:n-2, n-1), sparse.
  const Index k = n - 1;
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(static_cast<std::size_t>(m.nonZeros() + n));
  Eigen::VectorXd b = Eigen::VectorXd::Zero(k);
  for (Index j = 0; j < m.outerSize(); ++j)
    for (SpMat::InnerIterator it(m, j); it; ++it) {
      if (it.row() == k) continue;
      if (j == k) {
        b(it.row()) += it.value();
      } else {
        t.emplace_back(it.row(), j, -it.value());
      }
    }
  for (Index i = 0; i < k; ++i) t.emplace_back(i, i, 1.0);
  SpMat a(k, k);
  a.setFromTriplets(t.begin(), t.end());
  a.prune(0.0);
  a.makeCompressed();
  Eigen::VectorXd y;
  bool solved = false;
  if (n > static_cast<Index>(kStationaryDirectMaxSites)) {
    // Large systems: BiCGSTAB with a Jacobi preconditioner (I - M_sub is a column diagonally
    // dominant M-matrix), accepted only if the true relative residual is <= 1e-12; otherwise
    // the direct solve below (a sparse LU of a 3D lattice fills in badly: seconds at 10^4).
    Eigen::BiCGSTAB<SpMat, Eigen::DiagonalPreconditioner<double>> it;
    it.setTolerance(1e-14);
    it.setMaxIterations(5000);
    it.compute(a);
    if (it.info() == Eigen::Success) {
      y = it.solve(b);
      const double bn = b.norm();
      solved = y.allFinite() && (bn == 0.0 || (a * y - b).norm() <= 1e-12 * bn);
    }
  }
  if (!solved) {
    Eigen::SparseLU<SpMat, Eigen::COLAMDOrdering<int>> lu;
    lu.analyzePattern(a);
    lu.factorize(a);
    if (lu.info() != Eigen::Success)
      fail(fn, "singular system: the stationary distribution is not unique (reducible "
               "transition matrix; restrict to largest_connected_set first)");
    y = lu.solve(b);
    y += lu.solve(Eigen::VectorXd(b - a * y));
  }
  Eigen::VectorXd x(n);
  x << y, 1.0;
  Eigen::VectorXd pi = finish_stationary(x, fn);
  check_stationary_residual(pi, m * pi, fn);
  return pi;
}

const char* reversible_mle_status_name(ReversibleMleStatus status) {
  switch (status) {
    case ReversibleMleStatus::Converged: return "converged";
    case ReversibleMleStatus::NotConverged: return "not converged";
    case ReversibleMleStatus::NumericalFailure: return "numerical failure";
  }
  return "unknown";
}

namespace {

ReversibleMleResult<SpMat> reversible_core(const SpMat& counts_in,
                                           const ReversibleMleOptions& opt) {
  const char* fn = "reversible_mle";
  if (!(opt.tolerance > 0.0) || !std::isfinite(opt.tolerance))
    fail(fn, "tolerance must be finite and > 0, got " + num(opt.tolerance));
  if (opt.max_iterations < 1)
    fail(fn, "max_iterations must be >= 1, got " + std::to_string(opt.max_iterations));
  if (opt.anderson_depth < 0)
    fail(fn, "anderson_depth must be >= 0, got " + std::to_string(opt.anderson_depth));
  check_counts(counts_in, fn);
  const Index n = counts_in.rows();
  if (n == 0) fail(fn, "empty count matrix");
  SpMat c = counts_in;
  c.prune(0.0);
  c.makeCompressed();

  const Eigen::VectorXd c_out = column_sums(c);  // transitions out of each site
  for (Index j = 0; j < n; ++j)
    if (!(c_out(j) > 0.0))
      fail(fn, "site " + std::to_string(j) + " (column " + std::to_string(j) +
                   ") has no outgoing counts: restrict to largest_connected_set first");
  SpMat s = c + SpMat(c.transpose());  // symmetric part (times 2), bitwise symmetric
  s.makeCompressed();

  {  // the graph of S must be connected
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    std::vector<Index> queue{0};
    seen[0] = 1;
    for (std::size_t q = 0; q < queue.size(); ++q)
      for (SpMat::InnerIterator it(s, queue[q]); it; ++it)
        if (!seen[static_cast<std::size_t>(it.row())]) {
          seen[static_cast<std::size_t>(it.row())] = 1;
          queue.push_back(it.row());
        }
    if (static_cast<Index>(queue.size()) != n)
      fail(fn, "the count graph is not connected (" + std::to_string(queue.size()) + " of " +
                   std::to_string(n) +
                   " sites reachable from site 0): restrict to largest_connected_set first");
  }

  ReversibleMleResult<SpMat> r;
  r.tolerance = opt.tolerance;
  r.max_iterations = opt.max_iterations;
  r.status = ReversibleMleStatus::NotConverged;

  Eigen::VectorXd q(n);
  // One fixed-point update F(p), normalised; false on a non-finite / non-positive result.
  auto update = [&](const Eigen::VectorXd& p, Eigen::VectorXd& out) {
    q = c_out.cwiseQuotient(p);
    out.setZero(n);
    for (Index j = 0; j < n; ++j)
      for (SpMat::InnerIterator it(s, j); it; ++it)
        out(it.row()) += it.value() / (q(it.row()) + q(j));
    const double sum = out.sum();
    if (!std::isfinite(sum) || !(sum > 0.0)) return false;
    out /= sum;
    return out.allFinite() && out.minCoeff() > 0.0;
  };

  Eigen::VectorXd pi = column_sums(s);  // exact fixed point for symmetric counts
  pi /= pi.sum();
  Eigen::VectorXd p = pi, fp(n);
  // Anderson acceleration (type II) on y = log p: y <- g - dG gamma with
  // gamma = argmin ||f - dF gamma||_2, g = log F(p), f = g - y, and dF / dG the differences of
  // the last `depth` residuals / updates (ring buffer).
  const int depth = opt.anderson_depth;
  Eigen::MatrixXd d_f, d_g;
  if (depth > 0) {
    d_f.resize(n, depth);
    d_g.resize(n, depth);
  }
  Eigen::VectorXd y, g, f, f_prev, g_prev;
  int hist = 0, head = 0;
  bool have_prev = false;
  double prev_change = std::numeric_limits<double>::infinity();
  for (int it_count = 1; it_count <= opt.max_iterations; ++it_count) {
    if (!update(p, fp)) {
      r.status = ReversibleMleStatus::NumericalFailure;
      break;
    }
    double change = 0.0;
    for (Index i = 0; i < n; ++i) change = std::max(change, std::abs(fp(i) - p(i)) / fp(i));
    if (!std::isfinite(change)) {
      r.status = ReversibleMleStatus::NumericalFailure;
      break;
    }
    pi = fp;
    r.iterations = it_count;
    r.final_change = change;
    if (change <= opt.tolerance) {
      r.status = ReversibleMleStatus::Converged;
      break;
    }
    if (depth == 0) {
      p.swap(fp);
      continue;
    }
    y = p.array().log();
    g = fp.array().log();
    f = g - y;
    if (change > 100.0 * prev_change) {
      hist = head = 0;  // the last accelerated step went badly: restart the history
    } else if (have_prev) {
      const int slot = hist < depth ? hist : head;
      d_f.col(slot) = f - f_prev;
      d_g.col(slot) = g - g_prev;
      if (hist < depth) {
        ++hist;
      } else {
        head = (head + 1) % depth;
      }
    }
    f_prev = f;
    g_prev = g;
    have_prev = true;
    prev_change = change;
    Eigen::VectorXd y_next = g;
    if (hist > 0) {
      const Eigen::VectorXd gamma = d_f.leftCols(hist).colPivHouseholderQr().solve(f);
      y_next.noalias() -= d_g.leftCols(hist) * gamma;
    }
    bool ok = y_next.allFinite();
    if (ok) {
      y_next.array() -= y_next.maxCoeff();
      p = y_next.array().exp();
      p /= p.sum();
      ok = p.allFinite() && p.minCoeff() > 0.0;
    }
    if (!ok) {  // fall back to the plain update
      p = fp;
      hist = head = 0;
    }
  }

  // X(i,j) = S(i,j) / (c_i/pi_i + c_j/pi_j) (bitwise symmetric), M = X column-normalised.
  q = c_out.cwiseQuotient(pi);
  SpMat x = s;
  for (Index j = 0; j < n; ++j)
    for (SpMat::InnerIterator it(x, j); it; ++it)
      it.valueRef() = it.value() / (q(it.row()) + q(j));
  const Eigen::VectorXd xs = column_sums(x);
  for (Index j = 0; j < n; ++j)
    for (SpMat::InnerIterator it(x, j); it; ++it) it.valueRef() = it.value() / xs(j);
  r.transition_matrix = std::move(x);
  r.stationary = xs / xs.sum();

  std::ostringstream msg;
  msg.precision(3);
  switch (r.status) {
    case ReversibleMleStatus::Converged:
      msg << "reversible MLE converged after " << r.iterations
          << " iterations (max relative fixed-point residual of pi " << r.final_change
          << " <= tolerance " << r.tolerance << ")";
      break;
    case ReversibleMleStatus::NotConverged:
      msg << "reversible MLE did NOT converge: max relative fixed-point residual of pi "
          << r.final_change << " > tolerance " << r.tolerance << " after " << r.iterations
          << " iterations (the cap, max_iterations = " << r.max_iterations
          << "); the matrix is reversible and column-stochastic but not the maximum-likelihood "
             "estimate: raise max_iterations, loosen the tolerance, or enable "
             "anderson_depth";
      break;
    case ReversibleMleStatus::NumericalFailure:
      msg << "reversible MLE stopped: non-finite value in iteration " << (r.iterations + 1)
          << " (counts spanning too many orders of magnitude?); the matrix is built from the "
             "last finite pi and is not the maximum-likelihood estimate";
      break;
  }
  r.message = msg.str();
  return r;
}

}  // namespace

ReversibleMleResult<Eigen::MatrixXd> reversible_mle(const Eigen::MatrixXd& counts,
                                                    const ReversibleMleOptions& options) {
  check_counts(counts, "reversible_mle");
  const SpMat s = counts.sparseView();
  ReversibleMleResult<SpMat> rs = reversible_core(s, options);
  ReversibleMleResult<Eigen::MatrixXd> r;
  static_cast<EstimatorInfo&>(r) = static_cast<const EstimatorInfo&>(rs);
  r.transition_matrix = Eigen::MatrixXd(rs.transition_matrix);
  r.stationary = std::move(rs.stationary);
  return r;
}

ReversibleMleResult<Eigen::SparseMatrix<double>> reversible_mle(
    const Eigen::SparseMatrix<double>& counts, const ReversibleMleOptions& options) {
  return reversible_core(counts, options);
}

MarkovModel estimate_markov_model(const LagCounts& lag, std::size_t nsites,
                                  const MsmOptions& options) {
  const char* fn = "estimate_markov_model";
  const SpMat c = count_matrix_sparse(lag, nsites);
  MarkovModel model;
  model.lag_steps = lag.lag_steps;
  model.estimator = options.estimator;
  model.connectivity = largest_connected_set(c);
  if (model.connectivity.kept.empty())
    fail(fn, "lag " + std::to_string(lag.lag_steps) +
                 " has no counts inside any strongly connected set of sites");
  model.counts = restrict_to_sites(c, model.connectivity.kept);
  if (options.estimator == Estimator::NonReversible) {
    model.transition_matrix = nonreversible_mle(model.counts);
    model.stationary = stationary_distribution(model.transition_matrix);
    model.estimator_info.status = ReversibleMleStatus::Converged;
    model.estimator_info.message = "non-reversible MLE (column normalisation, eq. 5)";
  } else {
    ReversibleMleResult<SpMat> r = reversible_mle(model.counts, options.reversible);
    model.estimator_info = static_cast<const EstimatorInfo&>(r);
    model.transition_matrix = std::move(r.transition_matrix);
    model.stationary = std::move(r.stationary);
  }
  return model;
}

}  // namespace ionmsm
