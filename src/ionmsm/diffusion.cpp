// The exact diffusion tensor: see diffusion.hpp.
#include "ionmsm/diffusion.hpp"

#include <Eigen/IterativeLinearSolvers>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/connectivity.hpp"
#include "ionmsm/parallel.hpp"
#include "ionmsm/transport_checks.hpp"

namespace ionmsm {

using namespace detail;

namespace {

struct ClassStructure {
  std::vector<std::vector<int>> closed;   // states of each closed class, increasing
  std::vector<int> transient;             // states in no closed class, increasing
};

/// Closed classes (strongly connected components with no transition leaving them), ordered by
/// their lowest state, and the transient states.
ClassStructure find_classes(std::size_t n, const std::vector<StatePair>& pairs) {
  std::vector<Edge> edges;
  edges.reserve(pairs.size());
  for (const auto& q : pairs)
    edges.emplace_back(static_cast<std::size_t>(q.from), static_cast<std::size_t>(q.to));
  const StronglyConnectedComponents scc = strongly_connected_components(n, edges);
  const std::vector<std::size_t>& comp = scc.component;
  std::vector<char> leaves(scc.count, 0);
  for (const auto& e : edges)
    if (comp[e.first] != comp[e.second]) leaves[comp[e.first]] = 1;
  ClassStructure cs;
  std::vector<int> class_of_comp(scc.count, -1);
  for (std::size_t v = 0; v < n; ++v) {
    const std::size_t c = comp[v];
    if (leaves[c]) {
      cs.transient.push_back(static_cast<int>(v));
      continue;
    }
    if (class_of_comp[c] < 0) {
      class_of_comp[c] = static_cast<int>(cs.closed.size());
      cs.closed.emplace_back();
    }
    cs.closed[static_cast<std::size_t>(class_of_comp[c])].push_back(static_cast<int>(v));
  }
  return cs;
}

// Factorises A (n x n, given as triplets, duplicates summed) once and solves A X = B or
// A^T X = B: dense partial-pivoting LU up to dense_max states, sparse LU (COLAMD) above.
class LinearSolver {
 public:
  LinearSolver(int n, const Triplets& t, std::size_t dense_max, bool& used_sparse,
               const char* what)
      : what_(what), dense_(static_cast<std::size_t>(n) <= dense_max) {
    if (dense_) {
      a_ = Eigen::MatrixXd::Zero(n, n);
      for (const auto& e : t) a_(e.row(), e.col()) += e.value();
      lu_.compute(a_);
    } else {
      used_sparse = true;
      sa_.resize(n, n);
      sa_.setFromTriplets(t.begin(), t.end());
      sa_.makeCompressed();
    }
  }
  /// "dense LU", "BiCGSTAB" (every sparse solve converged iteratively) or "sparse LU".
  const char* method() const {
    return dense_ ? "dense LU" : (have_slu_ ? "sparse LU" : "BiCGSTAB");
  }
  int iterations() const { return iterations_; }
  Eigen::MatrixXd solve(const Eigen::MatrixXd& b) {
    if (dense_) return check(Eigen::MatrixXd(lu_.solve(b)));
    Eigen::MatrixXd x;
    if (iterative(sa_, b, x)) return x;
    ensure_lu();
    return check(Eigen::MatrixXd(slu_.solve(b)));
  }
  Eigen::MatrixXd solve_transposed(const Eigen::MatrixXd& b) {
    if (!dense_) {
      if (!have_at_) {
        at_ = sa_.transpose();
        at_.makeCompressed();
        have_at_ = true;
      }
      Eigen::MatrixXd x;
      if (iterative(at_, b, x)) return x;
      ensure_lu();
    }
    if (dense_) {
      if (!have_lu_t_) {
        lu_t_.compute(a_.transpose());
        have_lu_t_ = true;
      }
      return check(lu_t_.solve(b));
    }
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
    return check(slu_.transpose().solve(b));
#else
    if (!have_slu_t_) {
      Eigen::SparseMatrix<double> at = sa_.transpose();
      at.makeCompressed();
      factorise(slu_t_, at);
      have_slu_t_ = true;
    }
    return check(slu_t_.solve(b));
#endif
  }

 private:
  using SparseLu = Eigen::SparseLU<Eigen::SparseMatrix<double>, Eigen::COLAMDOrdering<int>>;
  // BiCGSTAB with a Jacobi preconditioner per right-hand side column (the systems are I - Q,
  // Q substochastic: diagonally dominant M-matrices); accepted only if every column's true
  // relative residual is <= 1e-12, otherwise the caller falls back to the sparse LU.
  bool iterative(const Eigen::SparseMatrix<double>& a, const Eigen::MatrixXd& b,
                 Eigen::MatrixXd& x) {
    Eigen::BiCGSTAB<Eigen::SparseMatrix<double>, Eigen::DiagonalPreconditioner<double>> it;
    it.setTolerance(1e-14);
    it.setMaxIterations(5000);
    it.compute(a);
    if (it.info() != Eigen::Success) return false;
    x.resize(b.rows(), b.cols());
    for (Eigen::Index c = 0; c < b.cols(); ++c) {
      const Eigen::VectorXd bc = b.col(c);
      const double bn = bc.norm();
      if (bn == 0.0) {
        x.col(c).setZero();
        continue;
      }
      Eigen::VectorXd xc = it.solve(bc);
      iterations_ += static_cast<int>(it.iterations());
      if (!xc.allFinite() || !((a * xc - bc).norm() <= 1e-12 * bn)) return false;
      x.col(c) = xc;
    }
    return true;
  }
  void ensure_lu() {
    if (have_slu_) return;
    factorise(slu_, sa_);
    have_slu_ = true;
  }
  void factorise(SparseLu& lu, Eigen::SparseMatrix<double>& a) const {
    lu.analyzePattern(a);
    lu.factorize(a);
    if (lu.info() != Eigen::Success)
      throw std::runtime_error(cat("exact_diffusion_tensor: sparse LU of the ", what_,
                                   " system failed: ", lu.lastErrorMessage()));
  }
  Eigen::MatrixXd check(Eigen::MatrixXd x) const {
    if (!x.allFinite())
      throw std::runtime_error(cat("exact_diffusion_tensor: the ", what_,
                                   " system is singular (non-finite solution)"));
    return x;
  }
  const char* what_;
  bool dense_;
  Eigen::MatrixXd a_;
  Eigen::PartialPivLU<Eigen::MatrixXd> lu_, lu_t_;
  bool have_lu_t_ = false;
  Eigen::SparseMatrix<double> sa_, at_;
  bool have_at_ = false, have_slu_ = false;
  int iterations_ = 0;
  SparseLu slu_;
#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
  SparseLu slu_t_;
  bool have_slu_t_ = false;
#endif
};

struct ClassResult {
  std::vector<double> pi;  // local
  Eigen::Matrix3d sigma = Eigen::Matrix3d::Zero();
  Eigen::Matrix3d s2 = Eigen::Matrix3d::Zero();
  Eigen::Vector3d m = Eigen::Vector3d::Zero();
  double residual = 0.0;
  std::string solver = "none";  // LinearSolver::method(), "none" for a single-site class
  int iterations = 0;
};

// Keeps the most expensive solver method seen: none < dense LU < BiCGSTAB < sparse LU.
void note_solver(DiffusionTensorResult& res, const std::string& method, int iterations) {
  auto rank = [](const std::string& m) {
    return m == "sparse LU" ? 3 : m == "BiCGSTAB" ? 2 : m == "dense LU" ? 1 : 0;
  };
  if (rank(method) > rank(res.linear_solver)) res.linear_solver = method;
  res.solver_iterations += iterations;
}

// Stationary distribution and asymptotic covariance of one closed class (see header).
ClassResult analyse_class(const std::vector<int>& states, const std::vector<StatePair>& pairs,
                          const std::vector<int>& local, std::size_t dense_max,
                          bool& used_sparse) {
  const int nc = static_cast<int>(states.size());
  ClassResult r;
  std::vector<const StatePair*> cp;  // pairs leaving the class's states (all stay inside)
  std::vector<double> out(static_cast<std::size_t>(nc), 0.0);
  for (const auto& q : pairs) {
    if (local[static_cast<std::size_t>(q.from)] < 0) continue;
    cp.push_back(&q);
    out[static_cast<std::size_t>(local[static_cast<std::size_t>(q.from)])] +=
        static_cast<double>(q.count);
  }
  // pinned state: the most visited (largest outgoing count) keeps the reduced systems well
  // conditioned (their condition grows with the mean hitting time of the pinned state)
  const int k = static_cast<int>(std::max_element(out.begin(), out.end()) - out.begin());
  auto red = [k](int i) { return i < k ? i : i - 1; };

  Eigen::VectorXd pi = Eigen::VectorXd::Zero(nc);
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(nc, 3);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(nc, 3);
  for (const StatePair* q : cp)
    b.row(local[static_cast<std::size_t>(q->from)]) += q->p * q->mean.transpose();

  if (nc == 1) {
    pi(0) = 1.0;
  } else {
    const int nr = nc - 1;
    // A = I - Q (Q: P without the pinned state k). Poisson: A g = b_bar (g_k = 0);
    // stationary: A^T x = (P_kj)_j, pi = (x, pi_k = 1) normalised.
    Triplets tg;
    tg.reserve(cp.size() + static_cast<std::size_t>(nr));
    Eigen::MatrixXd rhs_pi = Eigen::MatrixXd::Zero(nr, 1);
    for (int i = 0; i < nr; ++i) tg.emplace_back(i, i, 1.0);
    for (const StatePair* q : cp) {
      const int i = local[static_cast<std::size_t>(q->from)];
      const int j = local[static_cast<std::size_t>(q->to)];
      if (i == k) {
        if (j != k) rhs_pi(red(j), 0) += q->p;
        continue;
      }
      if (j == k) continue;
      tg.emplace_back(red(i), red(j), -q->p);
    }
    LinearSolver solver(nr, tg, dense_max, used_sparse, "stationary/Poisson");
    const Eigen::MatrixXd x = solver.solve_transposed(rhs_pi);
    for (int i = 0; i < nc; ++i) pi(i) = (i == k) ? 1.0 : x(red(i), 0);
    pi /= pi.sum();
    const Eigen::Vector3d m = b.transpose() * pi;
    Eigen::MatrixXd rhs_g(nr, 3);
    for (int i = 0; i < nc; ++i)
      if (i != k) rhs_g.row(red(i)) = b.row(i) - m.transpose();
    const Eigen::MatrixXd y = solver.solve(rhs_g);
    for (int i = 0; i < nc; ++i)
      if (i != k) g.row(i) = y.row(red(i));
    const Eigen::RowVector3d mean_g = pi.transpose() * g;  // enforce pi^T g = 0
    g.rowwise() -= mean_g;
    r.solver = solver.method();
    r.iterations = solver.iterations();
  }
  // stationarity residual
  Eigen::VectorXd flow = -pi;
  for (const StatePair* q : cp)
    flow(local[static_cast<std::size_t>(q->to)]) += pi(local[static_cast<std::size_t>(q->from)]) * q->p;
  r.residual = flow.cwiseAbs().maxCoeff();

  r.m = b.transpose() * pi;
  Eigen::Matrix3d cross = Eigen::Matrix3d::Zero();
  for (const StatePair* q : cp) {
    const int i = local[static_cast<std::size_t>(q->from)];
    const int j = local[static_cast<std::size_t>(q->to)];
    const double w = pi(i) * q->p;
    r.s2 += w * q->second;
    cross += w * q->mean * g.row(j);
  }
  r.sigma = r.s2 - r.m * r.m.transpose() + cross + cross.transpose();
  r.pi.assign(pi.data(), pi.data() + nc);
  return r;
}

// Weight of each closed class: the start mass on the class plus the mass absorbed into it from
// the transient states, w_c += y^T R(:, c) with (I - P_TT)^T y = p0_T.
std::vector<double> class_weights(const TransportStatistics& stats,
                                  const std::vector<StatePair>& pairs, const ClassStructure& cs,
                                  const DiffusionSolverOptions& options,
                                  DiffusionTensorResult& res) {
  const std::size_t na = stats.nstates();
  const std::vector<double> p0 = occupancy_start(stats);
  std::vector<int> class_of(na, -1);
  for (std::size_t c = 0; c < cs.closed.size(); ++c)
    for (int v : cs.closed[c]) class_of[static_cast<std::size_t>(v)] = static_cast<int>(c);
  std::vector<double> weight(cs.closed.size(), 0.0);
  for (std::size_t v = 0; v < na; ++v)
    if (class_of[v] >= 0) weight[static_cast<std::size_t>(class_of[v])] += p0[v];
  if (cs.transient.empty()) return weight;
  std::vector<int> tloc(na, -1);
  for (std::size_t t = 0; t < cs.transient.size(); ++t)
    tloc[static_cast<std::size_t>(cs.transient[t])] = static_cast<int>(t);
  const int nt = static_cast<int>(cs.transient.size());
  Triplets trip;
  for (int t = 0; t < nt; ++t) trip.emplace_back(t, t, 1.0);
  Eigen::MatrixXd rhs(nt, 1);
  for (int t = 0; t < nt; ++t)
    rhs(t, 0) = p0[static_cast<std::size_t>(cs.transient[static_cast<std::size_t>(t)])];
  for (const auto& q : pairs) {
    const int i = tloc[static_cast<std::size_t>(q.from)], j = tloc[static_cast<std::size_t>(q.to)];
    if (i >= 0 && j >= 0) trip.emplace_back(i, j, -q.p);
  }
  LinearSolver solver(nt, trip, options.dense_max_states, res.used_sparse_solver, "absorption");
  const Eigen::MatrixXd y = solver.solve_transposed(rhs);
  note_solver(res, solver.method(), solver.iterations());
  for (const auto& q : pairs) {
    const int i = tloc[static_cast<std::size_t>(q.from)];
    const int c = class_of[static_cast<std::size_t>(q.to)];
    if (i >= 0 && c >= 0) weight[static_cast<std::size_t>(c)] += y(i, 0) * q.p;
  }
  return weight;
}

// Analyses every closed class (analyse_class), stores it in res.classes and adds it, with its
// weight, to the limiting distribution and to the total D, D0 and drift.
void add_closed_classes(const TransportStatistics& stats, const std::vector<StatePair>& pairs,
                        const ClassStructure& cs, const std::vector<double>& weight,
                        double lag_time, const DiffusionSolverOptions& options,
                        DiffusionTensorResult& res) {
  std::vector<int> local(stats.nstates(), -1);
  for (std::size_t c = 0; c < cs.closed.size(); ++c) {
    const std::vector<int>& states = cs.closed[c];
    for (std::size_t k = 0; k < states.size(); ++k)
      local[static_cast<std::size_t>(states[k])] = static_cast<int>(k);
    const ClassResult r =
        analyse_class(states, pairs, local, options.dense_max_states, res.used_sparse_solver);
    for (int v : states) local[static_cast<std::size_t>(v)] = -1;

    ClassDiffusion cd;
    for (int v : states) cd.sites.push_back(stats.active_sites[static_cast<std::size_t>(v)]);
    cd.weight = weight[c];
    cd.D_tensor = sym_clean(r.sigma) / (2.0 * lag_time);
    cd.D0_tensor = sym_clean(r.s2) / (2.0 * lag_time);
    cd.drift_velocity = r.m / lag_time;
    res.max_stationary_residual = std::max(res.max_stationary_residual, r.residual);
    note_solver(res, r.solver, r.iterations);
    for (std::size_t k = 0; k < states.size(); ++k)
      res.limiting_distribution[static_cast<std::size_t>(cd.sites[k])] += cd.weight * r.pi[k];
    res.D_tensor += cd.weight * cd.D_tensor;
    res.D0_tensor += cd.weight * cd.D0_tensor;
    res.drift_velocity += cd.weight * cd.drift_velocity;
    res.classes.push_back(std::move(cd));
  }
}

// Round-off in the totals (e.g. D_yy ~ 1e-17 when every hop is along x) set to exactly 0, then
// the traces and the correlation factors f_a = D_aa / D0_aa (NaN where D0_aa = 0).
void finish_totals(DiffusionTensorResult& res) {
  const double scale = std::max(res.D_tensor.cwiseAbs().maxCoeff(),
                                res.D0_tensor.cwiseAbs().maxCoeff());
  if (std::isfinite(scale)) {
    res.D_tensor = zero_below_roundoff(res.D_tensor, scale);
    res.D0_tensor = zero_below_roundoff(res.D0_tensor, scale);
  }
  res.D_total = res.D_tensor.trace() / 3.0;
  res.D0_total = res.D0_tensor.trace() / 3.0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double tr0 = res.D0_tensor.trace();
  for (int a = 0; a < 3; ++a) {
    const double d0 = res.D0_tensor(a, a);
    res.correlation_factor[a] = (tr0 > 0.0 && d0 > 0.0) ? res.D_tensor(a, a) / d0 : nan;
  }
  res.correlation_factor_total = tr0 > 0.0 ? res.D_tensor.trace() / tr0 : nan;
}

}  // namespace

Eigen::Matrix3d zero_below_roundoff(const Eigen::Matrix3d& m, double scale, double relative) {
  if (!(relative >= 0.0) || !(scale >= 0.0) || !std::isfinite(relative) || !std::isfinite(scale))
    throw std::invalid_argument("zero_below_roundoff: scale and relative must be finite and >= 0");
  const double cut = relative * scale;
  Eigen::Matrix3d out = m;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (std::abs(out(i, j)) <= cut) out(i, j) = 0.0;
  return out;
}

DiffusionTensorResult exact_diffusion_tensor(const TransportStatistics& stats, double lag_time,
                                             const DiffusionSolverOptions& options) {
  const char* who = "exact_diffusion_tensor";
  check_stats(stats, who);
  check_tau(lag_time, who);
  const std::vector<StatePair> pairs = state_pairs(stats);
  const ClassStructure cs = find_classes(stats.nstates(), pairs);

  DiffusionTensorResult res;
  res.lag_steps = stats.lag_steps;
  res.lag_time = lag_time;
  res.n_transient_states = cs.transient.size();
  res.limiting_distribution.assign(stats.nsites(), 0.0);
  const std::vector<double> weight = class_weights(stats, pairs, cs, options, res);
  add_closed_classes(stats, pairs, cs, weight, lag_time, options, res);
  finish_totals(res);
  return res;
}

}  // namespace ionmsm
