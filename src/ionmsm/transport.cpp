#include "ionmsm/transport.hpp"

#include <Eigen/IterativeLinearSolvers>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "ionmsm/msm.hpp"
#include "ionmsm/parallel.hpp"

namespace ionmsm {
namespace {

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  os.precision(17);
  (os << ... << args);
  return os.str();
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

void check_tau(double tau_ps, const char* who) {
  if (!std::isfinite(tau_ps) || tau_ps <= 0.0)
    fail(cat(who, ": tau_ps must be finite and > 0 (got ", tau_ps, ")"));
}

Eigen::Vector3d shift_vector(const Image& s) {
  return Eigen::Vector3d(static_cast<double>(s[0]), static_cast<double>(s[1]),
                         static_cast<double>(s[2]));
}

// Shortest vector H (frac + k) over integer k. Exact for any cell: starting from the rounded
// fractional difference w with length r, only k with |w_a + k_a| <= r |row a of H^-1| (the
// fractional extent of a ball of radius r) can be shorter, and all of them are searched.
// Ties keep the first candidate found (k = 0 first).
class MinimumImage {
 public:
  explicit MinimumImage(const Eigen::Matrix3d& h) : h_(h) {
    const Eigen::Matrix3d hinv = h.inverse();
    for (int a = 0; a < 3; ++a) inv_face_[a] = hinv.row(a).norm();
  }
  Eigen::Vector3d operator()(const Eigen::Vector3d& frac) const {
    const Eigen::Vector3d w(frac[0] - std::round(frac[0]), frac[1] - std::round(frac[1]),
                            frac[2] - std::round(frac[2]));
    const Eigen::Vector3d x0 = h_ * w;
    Eigen::Vector3d best = x0;
    double best2 = x0.squaredNorm();
    const double r = std::sqrt(best2) * (1.0 + 1e-12);
    int lo[3], hi[3];
    bool only_zero = true;
    for (int a = 0; a < 3; ++a) {
      lo[a] = static_cast<int>(std::ceil(-r * inv_face_[a] - w[a]));
      hi[a] = static_cast<int>(std::floor(r * inv_face_[a] - w[a]));
      if (lo[a] != 0 || hi[a] != 0) only_zero = false;
    }
    if (only_zero) return best;
    for (int k0 = lo[0]; k0 <= hi[0]; ++k0)
      for (int k1 = lo[1]; k1 <= hi[1]; ++k1)
        for (int k2 = lo[2]; k2 <= hi[2]; ++k2) {
          if (k0 == 0 && k1 == 0 && k2 == 0) continue;
          const Eigen::Vector3d x =
              x0 + h_ * Eigen::Vector3d(static_cast<double>(k0), static_cast<double>(k1),
                                        static_cast<double>(k2));
          const double d2 = x.squaredNorm();
          if (d2 < best2) {
            best2 = d2;
            best = x;
          }
        }
    return best;
  }

 private:
  Eigen::Matrix3d h_;
  double inv_face_[3] = {0.0, 0.0, 0.0};
};

// Pairs in state indices (internal propagation and solver form).
struct StatePair {
  int from = 0, to = 0;  // state indices
  double p = 0.0;
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();
  Eigen::Matrix3d second = Eigen::Matrix3d::Zero();
  std::uint64_t count = 0;
};

std::vector<StatePair> state_pairs(const TransportStatistics& s) {
  std::vector<StatePair> out;
  out.reserve(s.pairs.size());
  for (const auto& q : s.pairs) {
    StatePair sp;
    sp.from = s.state_of_site[static_cast<std::size_t>(q.from)];
    sp.to = s.state_of_site[static_cast<std::size_t>(q.to)];
    sp.p = q.probability;
    sp.mean = q.mean_A;
    sp.second = q.second_moment_A2;
    sp.count = q.count;
    out.push_back(sp);
  }
  return out;
}

void check_stats(const TransportStatistics& s, const char* who) {
  if (s.nstates() == 0 || s.state_of_site.size() != s.nsites())
    fail(cat(who, ": empty or inconsistent TransportStatistics (build it with "
                  "build_transport_statistics)"));
}

// Start distribution over states: occupancy on the active set, normalised; fallback: the
// fraction of origins (outgoing counts into the active set).
std::vector<double> occupancy_start(const TransportStatistics& s) {
  const std::size_t n = s.nstates();
  std::vector<double> p(n, 0.0);
  double sum = 0.0;
  if (s.occupancy_fraction.size() == s.nsites()) {
    for (std::size_t k = 0; k < n; ++k) {
      p[k] = s.occupancy_fraction[static_cast<std::size_t>(s.active_sites[k])];
      sum += p[k];
    }
  }
  if (!(sum > 0.0)) {
    std::fill(p.begin(), p.end(), 0.0);
    sum = 0.0;
    for (const auto& q : s.pairs) {
      const double c = static_cast<double>(q.count);
      p[static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(q.from)])] += c;
      sum += c;
    }
  }
  for (double& x : p) x /= sum;
  return p;
}

// ---------------------------------------------------------------- communicating classes
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

// ---------------------------------------------------------------- linear systems
using Triplets = std::vector<Eigen::Triplet<double>>;

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

Eigen::Matrix3d sym_clean(const Eigen::Matrix3d& a) { return 0.5 * (a + a.transpose()); }

// ---------------------------------------------------------------- MSD propagation
struct MsdAccumulator {
  std::vector<Eigen::Matrix3d> tensor;
  std::vector<Eigen::Vector3d> mean;
  explicit MsdAccumulator(std::size_t n)
      : tensor(n, Eigen::Matrix3d::Zero()), mean(n, Eigen::Vector3d::Zero()) {}
};

MsdAccumulator propagate_moments(const TransportStatistics& s, const std::vector<double>& p0,
                                 std::int64_t n_max) {
  const std::size_t n = s.nstates();
  const std::vector<StatePair> pairs = state_pairs(s);
  std::vector<double> p(p0), np(n);
  std::vector<Eigen::Vector3d> m1(n, Eigen::Vector3d::Zero()), nm1(n);
  std::vector<Eigen::Matrix3d> m2(n, Eigen::Matrix3d::Zero()), nm2(n);
  MsdAccumulator acc(static_cast<std::size_t>(n_max));
  for (std::int64_t step = 0; step < n_max; ++step) {
    std::fill(np.begin(), np.end(), 0.0);
    std::fill(nm1.begin(), nm1.end(), Eigen::Vector3d::Zero());
    std::fill(nm2.begin(), nm2.end(), Eigen::Matrix3d::Zero());
    for (const auto& q : pairs) {
      const auto j = static_cast<std::size_t>(q.from), i = static_cast<std::size_t>(q.to);
      const double pj = p[j];
      np[i] += q.p * pj;
      nm1[i] += q.p * (m1[j] + pj * q.mean);
      const Eigen::Matrix3d c = m1[j] * q.mean.transpose();
      nm2[i] += q.p * (m2[j] + c + c.transpose() + pj * q.second);
    }
    p.swap(np);
    m1.swap(nm1);
    m2.swap(nm2);
    Eigen::Matrix3d t = Eigen::Matrix3d::Zero();
    Eigen::Vector3d m = Eigen::Vector3d::Zero();
    for (std::size_t i = 0; i < n; ++i) {
      t += m2[i];
      m += m1[i];
    }
    acc.tensor[static_cast<std::size_t>(step)] = sym_clean(t);
    acc.mean[static_cast<std::size_t>(step)] = m;
  }
  return acc;
}

// Minimum-image (R = 1) and replicated propagation: start columns are propagated in blocks.
MsdAccumulator propagate_folded(const TransportStatistics& s, const std::vector<double>& p0,
                                const std::array<int, 3>& rep, std::int64_t n_max) {
  const std::size_t na = s.nstates();
  const std::size_t rc = static_cast<std::size_t>(rep[0]) * static_cast<std::size_t>(rep[1]) *
                         static_cast<std::size_t>(rep[2]);
  const std::size_t ns = na * rc;
  const Eigen::Vector3d rv(rep[0], rep[1], rep[2]);
  const MinimumImage mi(s.box_h * rv.asDiagonal());

  // Transitions of the (state, cell) chain grouped by destination (CSR): the new probability
  // of a destination row is summed from its sources while it stays in cache.
  std::vector<std::size_t> dst_start(ns + 1, 0);
  auto cell_index = [&](int c0, int c1, int c2) {
    return (static_cast<std::size_t>(c0) * static_cast<std::size_t>(rep[1]) +
            static_cast<std::size_t>(c1)) * static_cast<std::size_t>(rep[2]) +
           static_cast<std::size_t>(c2);
  };
  struct Move {
    std::size_t src, dst;
    double p;
  };
  std::vector<Move> moves;
  moves.reserve(s.rows.size() * rc);
  for (const auto& r : s.rows) {
    const auto from = static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(r.from)]);
    const auto to = static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(r.to)]);
    std::array<int, 3> sh{};
    for (std::size_t a = 0; a < 3; ++a) {
      int v = r.shift[a] % rep[a];
      if (v < 0) v += rep[a];
      sh[a] = v;
    }
    for (int c0 = 0; c0 < rep[0]; ++c0)
      for (int c1 = 0; c1 < rep[1]; ++c1)
        for (int c2 = 0; c2 < rep[2]; ++c2)
          moves.push_back({from * rc + cell_index(c0, c1, c2),
                           to * rc + cell_index((c0 + sh[0]) % rep[0], (c1 + sh[1]) % rep[1],
                                                (c2 + sh[2]) % rep[2]),
                           r.probability});
  }
  std::stable_sort(moves.begin(), moves.end(),
                   [](const Move& a, const Move& b) { return a.dst < b.dst; });
  std::vector<std::size_t> move_src(moves.size());
  std::vector<double> move_p(moves.size());
  for (std::size_t k = 0; k < moves.size(); ++k) {
    ++dst_start[moves[k].dst + 1];
    move_src[k] = moves[k].src;
    move_p[k] = moves[k].p;
  }
  for (std::size_t i = 0; i < ns; ++i) dst_start[i + 1] += dst_start[i];
  moves = std::vector<Move>();

  std::vector<std::size_t> starts;
  for (std::size_t j = 0; j < na; ++j)
    if (p0[j] > 0.0) starts.push_back(j);

  const std::size_t budget = std::size_t(1) << 20;  // state x column entries per block
  const std::size_t block = std::max<std::size_t>(
      1, std::min<std::size_t>({64, budget / std::max<std::size_t>(ns, 1), starts.size()}));
  const std::size_t n_blocks = (starts.size() + block - 1) / block;

  std::vector<Eigen::Vector3d> f(na);
  for (std::size_t i = 0; i < na; ++i)
    f[i] = s.site_fractional[static_cast<std::size_t>(s.active_sites[i])];

  // Per block: W (ns*nb x 9) holds weight_b * (d_x^2, d_y^2, d_z^2, d_x d_y, d_x d_z, d_y d_z,
  // d_x, d_y, d_z) of every (state, column) entry; the probabilities after `chunk` consecutive
  // steps are the columns of V (ns*nb x chunk), and their moments W^T V come out of one dense
  // matrix product (vectorised, W read once per chunk instead of once per step). Blocks are
  // independent: up to two threads, each block's moments (9 x n_max) kept separately and
  // summed in block order, so the result does not depend on the scheduling.
  const std::size_t len_max = ns * block;
  const std::size_t chunk = static_cast<std::size_t>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(
             {16, n_max,
              static_cast<std::int64_t>((std::size_t(1) << 21) /
                                        std::max<std::size_t>(len_max, 1))})));
  std::vector<Eigen::MatrixXd> block_moments(n_blocks);
  auto run_block = [&](std::size_t bi, Eigen::MatrixXd& w, Eigen::MatrixXd& vs) {
    const std::size_t b0 = bi * block;
    const std::size_t nb = std::min(block, starts.size() - b0);
    const std::size_t len = ns * nb;
    for (std::size_t i = 0; i < na; ++i)
      for (int c0 = 0; c0 < rep[0]; ++c0)
        for (int c1 = 0; c1 < rep[1]; ++c1)
          for (int c2 = 0; c2 < rep[2]; ++c2) {
            const std::size_t cell = cell_index(c0, c1, c2);
            const Eigen::Vector3d fi = f[i] + Eigen::Vector3d(c0, c1, c2);
            for (std::size_t b = 0; b < nb; ++b) {
              const Eigen::Vector3d frac = (fi - f[starts[b0 + b]]).cwiseQuotient(rv);
              const Eigen::Vector3d d = mi(frac);
              const double pw = p0[starts[b0 + b]];
              const auto e = static_cast<Eigen::Index>((i * rc + cell) * nb + b);
              w(e, 0) = pw * d[0] * d[0];
              w(e, 1) = pw * d[1] * d[1];
              w(e, 2) = pw * d[2] * d[2];
              w(e, 3) = pw * d[0] * d[1];
              w(e, 4) = pw * d[0] * d[2];
              w(e, 5) = pw * d[1] * d[2];
              w(e, 6) = pw * d[0];
              w(e, 7) = pw * d[1];
              w(e, 8) = pw * d[2];
            }
          }
    Eigen::MatrixXd& mom = block_moments[bi];
    mom.resize(9, n_max);
    // column 0 of vs: the state before the chunk; columns 1..c: after each step of the chunk
    const auto l = static_cast<Eigen::Index>(len);
    vs.col(0).head(l).setZero();
    for (std::size_t b = 0; b < nb; ++b)
      vs(static_cast<Eigen::Index>((starts[b0 + b] * rc) * nb + b), 0) = 1.0;
    for (std::int64_t step0 = 0; step0 < n_max; step0 += static_cast<std::int64_t>(chunk)) {
      const auto nc = static_cast<Eigen::Index>(
          std::min<std::int64_t>(static_cast<std::int64_t>(chunk), n_max - step0));
      for (Eigen::Index c = 1; c <= nc; ++c) {
        const double* vin = vs.col(c - 1).data();
        double* vout = vs.col(c).data();
        for (std::size_t dst = 0; dst < ns; ++dst) {
          double* out = vout + dst * nb;
          std::fill(out, out + nb, 0.0);
          for (std::size_t k = dst_start[dst]; k < dst_start[dst + 1]; ++k) {
            const double* in = vin + move_src[k] * nb;
            const double p = move_p[k];
            for (std::size_t b = 0; b < nb; ++b) out[b] += p * in[b];
          }
        }
      }
      mom.middleCols(step0, nc).noalias() = w.topRows(l).transpose() * vs.block(0, 1, l, nc);
      vs.col(0).head(l) = vs.col(nc).head(l);
    }
  };
  {
    // scratch per worker (parallel_for runs at most two)
    Eigen::MatrixXd w[2], vs[2];
    for (int id = 0; id < 2; ++id) {
      w[id].resize(len_max, 9);
      vs[id].resize(len_max, static_cast<Eigen::Index>(chunk) + 1);
    }
    parallel_for(n_blocks, [&](std::size_t bi, int id) { run_block(bi, w[id], vs[id]); });
  }
  MsdAccumulator acc(static_cast<std::size_t>(n_max));
  for (const Eigen::MatrixXd& mom : block_moments)
    for (std::int64_t c = 0; c < n_max; ++c) {
      Eigen::Matrix3d t;
      t << mom(0, c), mom(3, c), mom(4, c), mom(3, c), mom(1, c), mom(5, c), mom(4, c),
          mom(5, c), mom(2, c);
      const auto st = static_cast<std::size_t>(c);
      acc.tensor[st] += t;
      acc.mean[st] += Eigen::Vector3d(mom(6, c), mom(7, c), mom(8, c));
    }
  return acc;
}

}  // namespace

// ============================================================================ statistics

TransportStatistics build_transport_statistics(const CountsData& data, std::size_t lag_index) {
  const char* who = "build_transport_statistics";
  if (data.lags.empty()) fail(cat(who, ": the counts data has no lags"));
  if (lag_index >= data.lags.size())
    fail(cat(who, ": lag index ", lag_index, " out of range (the counts data has ",
             data.lags.size(), " lag", data.lags.size() == 1 ? "" : "s", ")"));
  const std::size_t n = data.nsites();
  if (n == 0) fail(cat(who, ": the counts data has no sites"));
  if (!data.box_h.allFinite() || !std::isfinite(data.box_h.determinant()) ||
      data.box_h.determinant() == 0.0)
    fail(cat(who, ": box_h is singular or not finite"));
  if (!data.box_origin.allFinite()) fail(cat(who, ": box_origin is not finite"));
  for (std::size_t i = 0; i < n; ++i)
    if (!data.site_fractional[i].allFinite())
      fail(cat(who, ": site ", i, " has a non-finite fractional coordinate"));
  if (!data.occupancy.empty() && data.occupancy.size() != n)
    fail(cat(who, ": occupancy has ", data.occupancy.size(), " entries for ", n, " sites"));

  const LagCounts& lag = data.lags[lag_index];
  TransportStatistics s;
  s.lag_steps = lag.lag_steps;
  s.box_h = data.box_h;
  s.site_fractional = data.site_fractional;
  s.site_cartesian_A.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    s.site_cartesian_A[i] = data.box_origin + data.box_h * data.site_fractional[i];
  s.occupancy_fraction.assign(n, 0.0);
  if (!data.occupancy.empty()) {
    double total = 0.0;
    for (auto o : data.occupancy) total += static_cast<double>(o);
    if (total > 0.0)
      for (std::size_t i = 0; i < n; ++i)
        s.occupancy_fraction[i] = static_cast<double>(data.occupancy[i]) / total;
  }
  s.outgoing_count.assign(n, 0);

  std::vector<const TransitionCount*> rows;
  rows.reserve(lag.rows.size());
  for (std::size_t r = 0; r < lag.rows.size(); ++r) {
    const TransitionCount& t = lag.rows[r];
    if (t.from < 0 || static_cast<std::size_t>(t.from) >= n || t.to < 0 ||
        static_cast<std::size_t>(t.to) >= n)
      fail(cat(who, ": lag ", lag.lag_steps, " row ", r, " has a site index out of range (from ",
               t.from, ", to ", t.to, ", ", n, " sites)"));
    if (t.count == 0) continue;
    s.outgoing_count[static_cast<std::size_t>(t.from)] += t.count;
    s.total_count += t.count;
    rows.push_back(&t);
  }
  if (s.total_count == 0)
    fail(cat(who, ": lag ", lag.lag_steps, " (index ", lag_index, ") has no transition counts"));

  // active set: repeatedly remove sites without outgoing counts into the remaining set
  std::vector<std::uint64_t> out(s.outgoing_count);
  std::vector<char> active(n, 0);
  std::vector<std::size_t> queue;
  for (std::size_t i = 0; i < n; ++i) {
    active[i] = out[i] > 0;
    if (!active[i]) queue.push_back(i);
  }
  if (!queue.empty()) {
    std::vector<std::size_t> head(n + 1, 0), into(rows.size());
    for (const auto* t : rows) ++head[static_cast<std::size_t>(t->to) + 1];
    for (std::size_t i = 0; i < n; ++i) head[i + 1] += head[i];
    std::vector<std::size_t> fillpos(head.begin(), head.end() - 1);
    for (std::size_t r = 0; r < rows.size(); ++r)
      into[fillpos[static_cast<std::size_t>(rows[r]->to)]++] = r;
    for (std::size_t qi = 0; qi < queue.size(); ++qi) {
      const std::size_t x = queue[qi];
      for (std::size_t e = head[x]; e < head[x + 1]; ++e) {
        const auto y = static_cast<std::size_t>(rows[into[e]]->from);
        if (y == x || !active[y]) continue;
        out[y] -= rows[into[e]]->count;
        if (out[y] == 0) {
          active[y] = 0;
          queue.push_back(y);
        }
      }
    }
  }
  s.state_of_site.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    if (active[i]) {
      s.state_of_site[i] = static_cast<std::int32_t>(s.active_sites.size());
      s.active_sites.push_back(static_cast<SiteIndex>(i));
    } else {
      s.excluded_sites.push_back(static_cast<SiteIndex>(i));
    }
  }
  if (s.active_sites.empty())
    fail(cat(who, ": lag ", lag.lag_steps, ": no site has outgoing counts into sites with "
                  "outgoing counts (every walk leaves the counted set)"));

  for (const auto* t : rows) {
    const auto from = static_cast<std::size_t>(t->from), to = static_cast<std::size_t>(t->to);
    if (!active[from] || !active[to]) {
      s.dropped_count += t->count;
      continue;
    }
    DisplacementRow d;
    d.from = t->from;
    d.to = t->to;
    d.shift = t->shift;
    d.count = t->count;
    d.probability = static_cast<double>(t->count) / static_cast<double>(out[from]);
    d.displacement_A = data.box_h * (data.site_fractional[to] - data.site_fractional[from] +
                                     shift_vector(t->shift));
    s.rows.push_back(d);
  }
  std::stable_sort(s.rows.begin(), s.rows.end(),
                   [](const DisplacementRow& a, const DisplacementRow& b) {
                     if (a.from != b.from) return a.from < b.from;
                     if (a.to != b.to) return a.to < b.to;
                     return a.shift < b.shift;
                   });
  for (std::size_t r = 0; r < s.rows.size();) {
    std::size_t e = r;
    PairDisplacementMoments pm;
    pm.from = s.rows[r].from;
    pm.to = s.rows[r].to;
    while (e < s.rows.size() && s.rows[e].from == pm.from && s.rows[e].to == pm.to) {
      const double c = static_cast<double>(s.rows[e].count);
      pm.count += s.rows[e].count;
      pm.mean_A += c * s.rows[e].displacement_A;
      pm.second_moment_A2 += c * s.rows[e].displacement_A * s.rows[e].displacement_A.transpose();
      ++e;
    }
    const double c = static_cast<double>(pm.count);
    pm.mean_A /= c;
    pm.second_moment_A2 /= c;
    pm.probability =
        static_cast<double>(pm.count) / static_cast<double>(out[static_cast<std::size_t>(pm.from)]);
    s.pairs.push_back(pm);
    r = e;
  }
  return s;
}

Eigen::SparseMatrix<double> transition_matrix(const TransportStatistics& stats) {
  check_stats(stats, "transition_matrix");
  const auto n = static_cast<Eigen::Index>(stats.nsites());
  Triplets t;
  t.reserve(stats.pairs.size());
  for (const auto& q : stats.pairs) t.emplace_back(q.to, q.from, q.probability);
  Eigen::SparseMatrix<double> m(n, n);
  m.setFromTriplets(t.begin(), t.end());
  m.makeCompressed();
  return m;
}

// ============================================================================ MSD

const char* msd_method_name(MsdMethod method) {
  switch (method) {
    case MsdMethod::minimum_image: return "minimum_image";
    case MsdMethod::replicated: return "replicated";
    case MsdMethod::moments: return "moments";
  }
  return "unknown";
}

MsdMethod parse_msd_method(const std::string& name) {
  if (name == "minimum_image") return MsdMethod::minimum_image;
  if (name == "replicated") return MsdMethod::replicated;
  if (name == "moments") return MsdMethod::moments;
  fail(cat("unknown MSD method '", name, "' (expected minimum_image, replicated or moments)"));
}

MsdCurve propagate_msd(const TransportStatistics& stats, double tau_ps, const MsdOptions& options) {
  const char* who = "propagate_msd";
  check_stats(stats, who);
  check_tau(tau_ps, who);
  if (options.n_max < 1) fail(cat(who, ": n_max must be >= 1 (got ", options.n_max, ")"));
  std::array<int, 3> rep{1, 1, 1};
  if (options.method == MsdMethod::replicated) {
    for (int a = 0; a < 3; ++a)
      if (options.replicas[static_cast<std::size_t>(a)] < 1)
        fail(cat(who, ": replica counts must be >= 1 (got ", options.replicas[0], " ",
                 options.replicas[1], " ", options.replicas[2], ")"));
    rep = options.replicas;
  }
  const std::size_t na = stats.nstates();
  std::vector<double> p0;
  switch (options.start) {
    case MsdStart::occupancy: p0 = occupancy_start(stats); break;
    case MsdStart::uniform: p0.assign(na, 1.0 / static_cast<double>(na)); break;
    case MsdStart::stationary: {
      const DiffusionTensorResult d = exact_diffusion_tensor(stats, tau_ps);
      p0.resize(na);
      for (std::size_t k = 0; k < na; ++k)
        p0[k] = d.limiting_distribution[static_cast<std::size_t>(stats.active_sites[k])];
      break;
    }
  }
  MsdCurve c;
  c.method = options.method;
  c.replicas = rep;
  c.lag_steps = stats.lag_steps;
  c.tau_ps = tau_ps;
  c.start_probability.assign(stats.nsites(), 0.0);
  for (std::size_t k = 0; k < na; ++k)
    c.start_probability[static_cast<std::size_t>(stats.active_sites[k])] = p0[k];

  const MsdAccumulator acc = options.method == MsdMethod::moments
                                 ? propagate_moments(stats, p0, options.n_max)
                                 : propagate_folded(stats, p0, rep, options.n_max);
  const auto nn = static_cast<std::size_t>(options.n_max);
  c.n_lags.resize(nn);
  c.time_ps.resize(nn);
  c.msd_tensor_A2 = acc.tensor;
  c.mean_displacement_A = acc.mean;
  c.msd_xx_A2.resize(nn);
  c.msd_yy_A2.resize(nn);
  c.msd_zz_A2.resize(nn);
  c.msd_total_A2.resize(nn);
  for (std::size_t k = 0; k < nn; ++k) {
    c.n_lags[k] = static_cast<std::int64_t>(k) + 1;
    c.time_ps[k] = static_cast<double>(k + 1) * tau_ps;
    c.msd_xx_A2[k] = acc.tensor[k](0, 0);
    c.msd_yy_A2[k] = acc.tensor[k](1, 1);
    c.msd_zz_A2[k] = acc.tensor[k](2, 2);
    c.msd_total_A2[k] = acc.tensor[k].trace();
  }
  return c;
}

// ============================================================================ exact D

DiffusionTensorResult exact_diffusion_tensor(const TransportStatistics& stats, double tau_ps,
                                             const DiffusionSolverOptions& options) {
  const char* who = "exact_diffusion_tensor";
  check_stats(stats, who);
  check_tau(tau_ps, who);
  const std::size_t na = stats.nstates();
  const std::vector<StatePair> pairs = state_pairs(stats);
  const ClassStructure cs = find_classes(na, pairs);

  DiffusionTensorResult res;
  res.lag_steps = stats.lag_steps;
  res.tau_ps = tau_ps;
  res.n_transient_states = cs.transient.size();
  res.limiting_distribution.assign(stats.nsites(), 0.0);

  // class weights: start mass on the class plus mass absorbed from transient states,
  // w_c += y^T R(:, c) with (I - P_TT)^T y = p0_T
  const std::vector<double> p0 = occupancy_start(stats);
  std::vector<int> class_of(na, -1);
  for (std::size_t c = 0; c < cs.closed.size(); ++c)
    for (int v : cs.closed[c]) class_of[static_cast<std::size_t>(v)] = static_cast<int>(c);
  std::vector<double> weight(cs.closed.size(), 0.0);
  for (std::size_t v = 0; v < na; ++v)
    if (class_of[v] >= 0) weight[static_cast<std::size_t>(class_of[v])] += p0[v];
  if (!cs.transient.empty()) {
    std::vector<int> tloc(na, -1);
    for (std::size_t t = 0; t < cs.transient.size(); ++t)
      tloc[static_cast<std::size_t>(cs.transient[t])] = static_cast<int>(t);
    const int nt = static_cast<int>(cs.transient.size());
    Triplets trip;
    for (int t = 0; t < nt; ++t) trip.emplace_back(t, t, 1.0);
    Eigen::MatrixXd rhs(nt, 1);
    for (int t = 0; t < nt; ++t) rhs(t, 0) = p0[static_cast<std::size_t>(cs.transient[static_cast<std::size_t>(t)])];
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
  }

  std::vector<int> local(na, -1);
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
    cd.D_A2_per_ps = sym_clean(r.sigma) / (2.0 * tau_ps);
    cd.D0_A2_per_ps = sym_clean(r.s2) / (2.0 * tau_ps);
    cd.drift_velocity_A_per_ps = r.m / tau_ps;
    res.max_stationary_residual = std::max(res.max_stationary_residual, r.residual);
    note_solver(res, r.solver, r.iterations);
    for (std::size_t k = 0; k < states.size(); ++k)
      res.limiting_distribution[static_cast<std::size_t>(cd.sites[k])] += cd.weight * r.pi[k];
    res.D_A2_per_ps += cd.weight * cd.D_A2_per_ps;
    res.D0_A2_per_ps += cd.weight * cd.D0_A2_per_ps;
    res.drift_velocity_A_per_ps += cd.weight * cd.drift_velocity_A_per_ps;
    res.classes.push_back(std::move(cd));
  }
  res.D_total_A2_per_ps = res.D_A2_per_ps.trace() / 3.0;
  res.D0_total_A2_per_ps = res.D0_A2_per_ps.trace() / 3.0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double tr0 = res.D0_A2_per_ps.trace();
  for (int a = 0; a < 3; ++a) {
    const double d0 = res.D0_A2_per_ps(a, a);
    res.correlation_factor[a] = (tr0 > 0.0 && d0 > 1e-14 * tr0) ? res.D_A2_per_ps(a, a) / d0 : nan;
  }
  res.correlation_factor_total = tr0 > 0.0 ? res.D_A2_per_ps.trace() / tr0 : nan;
  return res;
}

// ============================================================================ Einstein fit

EinsteinFit fit_einstein(const MsdCurve& curve, double first_fraction) {
  const char* who = "fit_einstein";
  const std::size_t n = curve.time_ps.size();
  if (curve.msd_xx_A2.size() != n || curve.msd_yy_A2.size() != n ||
      curve.msd_zz_A2.size() != n || curve.msd_total_A2.size() != n)
    fail(cat(who, ": inconsistent MSD curve (", n, " times, ", curve.msd_xx_A2.size(), "/",
             curve.msd_yy_A2.size(), "/", curve.msd_zz_A2.size(), "/", curve.msd_total_A2.size(),
             " MSD values)"));
  if (n < 2) fail(cat(who, ": the MSD curve needs at least 2 points (has ", n, ")"));
  if (!(first_fraction >= 0.0 && first_fraction < 1.0))
    fail(cat(who, ": first_fraction must be in [0, 1) (got ", first_fraction, ")"));
  std::size_t first = static_cast<std::size_t>(std::floor(static_cast<double>(n) * first_fraction));
  first = std::min(first, n - 2);
  const std::size_t m = n - first;
  double tbar = 0.0;
  for (std::size_t k = first; k < n; ++k) tbar += curve.time_ps[k];
  tbar /= static_cast<double>(m);
  double stt = 0.0;
  for (std::size_t k = first; k < n; ++k) stt += (curve.time_ps[k] - tbar) * (curve.time_ps[k] - tbar);
  if (!(stt > 0.0)) fail(cat(who, ": the fitted times are all equal"));
  auto line = [&](const std::vector<double>& y, double& slope, double& intercept) {
    double ybar = 0.0;
    for (std::size_t k = first; k < n; ++k) ybar += y[k];
    ybar /= static_cast<double>(m);
    double sty = 0.0;
    for (std::size_t k = first; k < n; ++k) sty += (curve.time_ps[k] - tbar) * (y[k] - ybar);
    slope = sty / stt;
    intercept = ybar - slope * tbar;
  };
  EinsteinFit fit;
  fit.first_point = first;
  fit.n_points = m;
  const std::vector<double>* comp[3] = {&curve.msd_xx_A2, &curve.msd_yy_A2, &curve.msd_zz_A2};
  for (int a = 0; a < 3; ++a) {
    double slope = 0.0, icpt = 0.0;
    line(*comp[a], slope, icpt);
    fit.D_A2_per_ps[a] = slope / 2.0;
    fit.intercept_A2[a] = icpt;
  }
  double slope = 0.0;
  line(curve.msd_total_A2, slope, fit.intercept_total_A2);
  fit.D_total_A2_per_ps = slope / 6.0;
  return fit;
}

// ============================================================================ jump network

JumpNetwork build_jump_network(const TransportStatistics& stats, double tau_ps) {
  const char* who = "build_jump_network";
  check_stats(stats, who);
  check_tau(tau_ps, who);
  const std::size_t n = stats.nsites();
  JumpNetwork net;
  net.lag_steps = stats.lag_steps;
  net.tau_ps = tau_ps;
  net.site_cartesian_A = stats.site_cartesian_A;
  net.occupancy_fraction = stats.occupancy_fraction;
  net.self_image_hop_count.assign(n, 0);
  std::vector<std::uint64_t> out(n, 0);
  for (const auto& q : stats.pairs) out[static_cast<std::size_t>(q.from)] += q.count;
  std::map<std::pair<SiteIndex, SiteIndex>, JumpEdge> edges;
  for (const auto& r : stats.rows) {
    if (r.from == r.to) {
      if (r.shift != Image{0, 0, 0}) net.self_image_hop_count[static_cast<std::size_t>(r.from)] += r.count;
      continue;
    }
    const SiteIndex a = std::min(r.from, r.to), b = std::max(r.from, r.to);
    JumpEdge& e = edges[{a, b}];
    e.site_a = a;
    e.site_b = b;
    const double c = static_cast<double>(r.count);
    if (r.from == a) {
      e.count_ab += r.count;
      e.mean_jump_ab_A += c * r.displacement_A;
    } else {
      e.count_ba += r.count;
      e.mean_jump_ab_A -= c * r.displacement_A;
    }
  }
  net.edges.reserve(edges.size());
  for (auto& kv : edges) {
    JumpEdge& e = kv.second;
    e.mean_jump_ab_A /= static_cast<double>(e.count_ab + e.count_ba);
    const auto a = static_cast<std::size_t>(e.site_a), b = static_cast<std::size_t>(e.site_b);
    e.rate_ab_per_ps = e.count_ab == 0 ? 0.0
                                       : static_cast<double>(e.count_ab) /
                                             static_cast<double>(out[a]) / tau_ps;
    e.rate_ba_per_ps = e.count_ba == 0 ? 0.0
                                       : static_cast<double>(e.count_ba) /
                                             static_cast<double>(out[b]) / tau_ps;
    net.edges.push_back(e);
  }
  return net;
}

JumpNetwork build_jump_network(const CountsData& data, double tau_ps) {
  if (data.lags.empty()) fail("build_jump_network: the counts data has no lags");
  std::size_t shortest = 0;
  for (std::size_t k = 1; k < data.lags.size(); ++k)
    if (data.lags[k].lag_steps < data.lags[shortest].lag_steps) shortest = k;
  return build_jump_network(build_transport_statistics(data, shortest), tau_ps);
}

ProjectionAxes most_informative_axes(const TransportStatistics& stats) {
  check_stats(stats, "most_informative_axes");
  ProjectionAxes pa;
  Eigen::Vector3d s1 = Eigen::Vector3d::Zero(), s2 = Eigen::Vector3d::Zero();
  double w = 0.0;
  for (const auto& r : stats.rows) {
    if (r.from == r.to && r.shift == Image{0, 0, 0}) continue;
    const double c = static_cast<double>(r.count);
    pa.n_jumps += r.count;
    w += c;
    s1 += c * r.displacement_A;
    s2 += c * r.displacement_A.cwiseProduct(r.displacement_A);
  }
  if (pa.n_jumps == 0) return pa;
  const Eigen::Vector3d mean = s1 / w;
  pa.jump_variance_A2 = (s2 / w - mean.cwiseProduct(mean)).cwiseMax(0.0);
  std::array<int, 3> order{0, 1, 2};
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
    return pa.jump_variance_A2[x] > pa.jump_variance_A2[y];
  });
  pa.axes = {std::min(order[0], order[1]), std::max(order[0], order[1])};
  return pa;
}

}  // namespace ionmsm
