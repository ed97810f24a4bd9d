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
#include <sstream>
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

// ----------------------------------------------------------------------- reversible MLE
// reversible_core = options check -> fixed-point problem (S, c) -> fixed point pi (plain or
// Anderson-accelerated) -> transition matrix from pi -> message. Formulas: estimators.hpp.

void check_reversible_options(const ReversibleMleOptions& opt, const char* fn) {
  if (!(opt.tolerance > 0.0) || !std::isfinite(opt.tolerance))
    fail(fn, "tolerance must be finite and > 0, got " + num(opt.tolerance));
  if (opt.max_iterations < 1)
    fail(fn, "max_iterations must be >= 1, got " + std::to_string(opt.max_iterations));
  if (opt.anderson_depth < 0)
    fail(fn, "anderson_depth must be >= 0, got " + std::to_string(opt.anderson_depth));
}

/// The fixed-point problem of the counts C: S = C + C^T (bitwise symmetric) and c = column
/// sums of C (transitions out of each site).
struct ReversibleProblem {
  SpMat s;
  Eigen::VectorXd c_out;
  Index n = 0;
};

/// Breadth-first search from site 0 over the graph of the symmetric S: it must reach all sites.
void check_connected(const SpMat& s, Index n, const char* fn) {
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

/// Checks the counts (every site left at least once, S connected) and builds S and c.
ReversibleProblem reversible_problem(const SpMat& counts_in, const char* fn) {
  check_counts(counts_in, fn);
  ReversibleProblem pb;
  pb.n = counts_in.rows();
  if (pb.n == 0) fail(fn, "empty count matrix");
  SpMat c = counts_in;
  c.prune(0.0);
  c.makeCompressed();
  pb.c_out = column_sums(c);
  for (Index j = 0; j < pb.n; ++j)
    if (!(pb.c_out(j) > 0.0))
      fail(fn, "site " + std::to_string(j) + " (column " + std::to_string(j) +
                   ") has no outgoing counts: restrict to largest_connected_set first");
  pb.s = c + SpMat(c.transpose());
  pb.s.makeCompressed();
  check_connected(pb.s, pb.n, fn);
  return pb;
}

/// One fixed-point update out = F(p) / sum F(p), F(p)_i = sum_j S(i,j) / (q_i + q_j) with
/// q = c / p (q: scratch). False on a non-finite or non-positive result.
bool fixed_point_update(const ReversibleProblem& pb, const Eigen::VectorXd& p,
                        Eigen::VectorXd& q, Eigen::VectorXd& out) {
  q = pb.c_out.cwiseQuotient(p);
  out.setZero(pb.n);
  for (Index j = 0; j < pb.n; ++j)
    for (SpMat::InnerIterator it(pb.s, j); it; ++it)
      out(it.row()) += it.value() / (q(it.row()) + q(j));
  const double sum = out.sum();
  if (!std::isfinite(sum) || !(sum > 0.0)) return false;
  out /= sum;
  return out.allFinite() && out.minCoeff() > 0.0;
}

/// Anderson acceleration (type II) of the update F on y = log p:
///     y <- g - dG gamma,  gamma = argmin_gamma ||f - dF gamma||_2,
/// with g = log F(p), f = g - y, and dF / dG the differences of the last `depth` residuals f /
/// values g (a ring buffer; restarted when the change grows 100-fold or a step fails).
class AndersonMixer {
 public:
  AndersonMixer(int depth, Index n) : depth_(depth) {
    d_f_.resize(n, depth);
    d_g_.resize(n, depth);
  }

  /// The next iterate p from p and fp = F(p) whose max relative change was `change`.
  void step(Eigen::VectorXd& p, const Eigen::VectorXd& fp, double change) {
    const Eigen::VectorXd y = p.array().log();
    const Eigen::VectorXd g = fp.array().log();
    const Eigen::VectorXd f = g - y;
    remember(f, g, change);
    Eigen::VectorXd y_next = g;
    if (hist_ > 0) {
      const Eigen::VectorXd gamma = d_f_.leftCols(hist_).colPivHouseholderQr().solve(f);
      y_next.noalias() -= d_g_.leftCols(hist_) * gamma;
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
      hist_ = head_ = 0;
    }
  }

 private:
  /// Adds the differences to the previous f and g to the history.
  void remember(const Eigen::VectorXd& f, const Eigen::VectorXd& g, double change) {
    if (change > 100.0 * prev_change_) {
      hist_ = head_ = 0;  // the last accelerated step went badly: restart the history
    } else if (have_prev_) {
      const int slot = hist_ < depth_ ? hist_ : head_;
      d_f_.col(slot) = f - f_prev_;
      d_g_.col(slot) = g - g_prev_;
      if (hist_ < depth_) {
        ++hist_;
      } else {
        head_ = (head_ + 1) % depth_;
      }
    }
    f_prev_ = f;
    g_prev_ = g;
    have_prev_ = true;
    prev_change_ = change;
  }

  int depth_;
  Eigen::MatrixXd d_f_, d_g_;
  Eigen::VectorXd f_prev_, g_prev_;
  int hist_ = 0, head_ = 0;
  bool have_prev_ = false;
  double prev_change_ = std::numeric_limits<double>::infinity();
};

/// Iterates F from pi = row sums of S (normalised; exact for symmetric counts) until the max
/// relative change max_i |F(p)_i - p_i| / F(p)_i <= tolerance; fills the status, iterations and
/// final change of `info` and returns the last F(p).
Eigen::VectorXd solve_fixed_point(const ReversibleProblem& pb, const ReversibleMleOptions& opt,
                                  EstimatorInfo& info) {
  const Index n = pb.n;
  info.status = ReversibleMleStatus::NotConverged;
  Eigen::VectorXd pi = column_sums(pb.s);
  pi /= pi.sum();
  Eigen::VectorXd p = pi, fp(n), q(n);
  AndersonMixer mixer(opt.anderson_depth, opt.anderson_depth > 0 ? n : 0);
  for (int it_count = 1; it_count <= opt.max_iterations; ++it_count) {
    if (!fixed_point_update(pb, p, q, fp)) {
      info.status = ReversibleMleStatus::NumericalFailure;
      break;
    }
    double change = 0.0;
    for (Index i = 0; i < n; ++i) change = std::max(change, std::abs(fp(i) - p(i)) / fp(i));
    if (!std::isfinite(change)) {
      info.status = ReversibleMleStatus::NumericalFailure;
      break;
    }
    pi = fp;
    info.iterations = it_count;
    info.final_change = change;
    if (change <= opt.tolerance) {
      info.status = ReversibleMleStatus::Converged;
      break;
    }
    if (opt.anderson_depth == 0)
      p.swap(fp);
    else
      mixer.step(p, fp, change);
  }
  return pi;
}

/// X(i,j) = S(i,j) / (c_i/pi_i + c_j/pi_j) (bitwise symmetric); M = X column-normalised and
/// the stationary vector = column sums of X, normalised.
void reversible_transition_matrix(const ReversibleProblem& pb, const Eigen::VectorXd& pi,
                                  ReversibleMleResult<SpMat>& r) {
  const Eigen::VectorXd q = pb.c_out.cwiseQuotient(pi);
  SpMat x = pb.s;
  for (Index j = 0; j < pb.n; ++j)
    for (SpMat::InnerIterator it(x, j); it; ++it)
      it.valueRef() = it.value() / (q(it.row()) + q(j));
  const Eigen::VectorXd xs = column_sums(x);
  for (Index j = 0; j < pb.n; ++j)
    for (SpMat::InnerIterator it(x, j); it; ++it) it.valueRef() = it.value() / xs(j);
  r.transition_matrix = std::move(x);
  r.stationary = xs / xs.sum();
}

/// EstimatorInfo::message of the reversible MLE: what happened and, if not converged, what to do.
std::string reversible_message(const EstimatorInfo& r) {
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
  return msg.str();
}

ReversibleMleResult<SpMat> reversible_core(const SpMat& counts, const ReversibleMleOptions& opt) {
  const char* fn = "reversible_mle";
  check_reversible_options(opt, fn);
  const ReversibleProblem pb = reversible_problem(counts, fn);
  ReversibleMleResult<SpMat> r;
  r.tolerance = opt.tolerance;
  r.max_iterations = opt.max_iterations;
  const Eigen::VectorXd pi = solve_fixed_point(pb, opt, r);
  reversible_transition_matrix(pb, pi, r);
  r.message = reversible_message(r);
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
