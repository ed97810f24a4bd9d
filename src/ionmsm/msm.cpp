// Markov state models: see msm.hpp for the conventions (C(i,j) = transitions j -> i,
// column-stochastic M, p(t + tau) = M p(t)).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
// GCC 12+ reports a false -Wuse-after-free inside Eigen's aligned_free (Eigen/src/Core/util/
// Memory.h) when it inlines Spectra::UpperHessenbergEigen; header code, not ours. The warning's
// location is in Eigen, so the pragma must precede the first Eigen include.
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
#include "ionmsm/msm.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/IterativeLinearSolvers>
#include <Eigen/LU>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <Eigen/SparseCholesky>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "ionmsm/parallel.hpp"

#ifdef IONMSM_HAVE_SPECTRA
#include <Spectra/GenEigsRealShiftSolver.h>
#include <Spectra/GenEigsSolver.h>
#include <Spectra/MatOp/SparseGenMatProd.h>
#include <Spectra/MatOp/SparseGenRealShiftSolve.h>
#include <Spectra/MatOp/SparseSymMatProd.h>
#include <Spectra/SymEigsShiftSolver.h>
#include <Spectra/SymEigsSolver.h>
#endif

namespace ionmsm {
namespace {

using SpMat = Eigen::SparseMatrix<double>;
using Index = Eigen::Index;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kStochasticTolerance = 1e-8;
// stationary_distribution (sparse): SparseLU up to this many sites, BiCGSTAB above.
constexpr std::size_t kStationaryDirectMaxSites = 2000;

[[noreturn]] void fail(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string("ionmsm::") + function + ": " + what);
}

std::string num(double x, int precision = 4) {
  std::ostringstream os;
  os.precision(precision);
  os << x;
  return os.str();
}

void check_square(Index rows, Index cols, const char* function, const char* what) {
  if (rows != cols) {
    fail(function, std::string(what) + " must be square, got " + std::to_string(rows) + " x " +
                       std::to_string(cols));
  }
}

void check_count_value(double v, Index i, Index j, const char* function) {
  if (!std::isfinite(v) || v < 0.0) {
    fail(function, "count C(" + std::to_string(i) + ", " + std::to_string(j) + ") = " + num(v) +
                       " is negative or not finite");
  }
}

void check_counts(const Eigen::MatrixXd& c, const char* function) {
  check_square(c.rows(), c.cols(), function, "the count matrix");
  for (Index j = 0; j < c.cols(); ++j)
    for (Index i = 0; i < c.rows(); ++i) check_count_value(c(i, j), i, j, function);
}

void check_counts(const SpMat& c, const char* function) {
  check_square(c.rows(), c.cols(), function, "the count matrix");
  for (Index j = 0; j < c.outerSize(); ++j)
    for (SpMat::InnerIterator it(c, j); it; ++it)
      check_count_value(it.value(), it.row(), it.col(), function);
}

void check_finite(const Eigen::MatrixXd& m, const char* function, const char* what) {
  if (!m.allFinite()) fail(function, std::string(what) + " has a non-finite entry");
}

void check_finite(const SpMat& m, const char* function, const char* what) {
  for (Index j = 0; j < m.outerSize(); ++j)
    for (SpMat::InnerIterator it(m, j); it; ++it)
      if (!std::isfinite(it.value())) fail(function, std::string(what) + " has a non-finite entry");
}

// Sequential column sums (same order for dense and sparse, so both give identical numbers).
Eigen::VectorXd column_sums(const Eigen::MatrixXd& m) {
  Eigen::VectorXd s(m.cols());
  for (Index j = 0; j < m.cols(); ++j) {
    double acc = 0.0;
    for (Index i = 0; i < m.rows(); ++i) acc += m(i, j);
    s(j) = acc;
  }
  return s;
}

Eigen::VectorXd column_sums(const SpMat& m) {
  Eigen::VectorXd s = Eigen::VectorXd::Zero(m.cols());
  for (Index j = 0; j < m.outerSize(); ++j) {
    double acc = 0.0;
    for (SpMat::InnerIterator it(m, j); it; ++it) acc += it.value();
    s(j) = acc;
  }
  return s;
}

void check_column_stochastic(const Eigen::VectorXd& sums, const char* function) {
  for (Index j = 0; j < sums.size(); ++j) {
    if (!(std::abs(sums(j) - 1.0) <= kStochasticTolerance)) {
      fail(function, "the transition matrix is not column-stochastic: column " +
                         std::to_string(j) + " sums to " + num(sums(j), 12) +
                         " (convention: M(i,j) = P(j -> i), columns sum to 1)");
    }
  }
}

void check_lag_rows(const LagCounts& lag, std::size_t nsites, const char* function) {
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

void check_site_list(const std::vector<std::size_t>& sites, Index n, const char* function) {
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (std::size_t s : sites) {
    if (s >= static_cast<std::size_t>(n))
      fail(function, "site " + std::to_string(s) + " out of range for a matrix of size " +
                         std::to_string(n));
    if (seen[s]) fail(function, "site " + std::to_string(s) + " listed twice");
    seen[s] = 1;
  }
}

// ------------------------------------------------------------------ spectrum helpers

// Decreasing modulus; moduli within tie_tol of the first of a group are ordered by decreasing
// real part, then decreasing imaginary part.
std::vector<Index> spectral_order(const Eigen::VectorXcd& ev, double tie_tol) {
  const Index n = ev.size();
  std::vector<Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), Index(0));
  std::stable_sort(idx.begin(), idx.end(),
                   [&](Index a, Index b) { return std::abs(ev(a)) > std::abs(ev(b)); });
  std::size_t a = 0;
  while (a < idx.size()) {
    std::size_t b = a + 1;
    const double lead = std::abs(ev(idx[a]));
    while (b < idx.size() && lead - std::abs(ev(idx[b])) <= tie_tol) ++b;
    std::stable_sort(idx.begin() + static_cast<std::ptrdiff_t>(a),
                     idx.begin() + static_cast<std::ptrdiff_t>(b), [&](Index x, Index y) {
                       if (ev(x).real() != ev(y).real()) return ev(x).real() > ev(y).real();
                       return ev(x).imag() > ev(y).imag();
                     });
    a = b;
  }
  return idx;
}

// General-path right vectors: unit 2-norm, largest-modulus component real positive; a leading
// eigenvalue within 1e-8 of 1 gets its vector scaled to sum 1.
void normalise_general_right(Eigen::MatrixXcd& r, const Eigen::VectorXcd& sorted_ev) {
  for (Index k = 0; k < r.cols(); ++k) {
    Index m = 0;
    r.col(k).cwiseAbs().maxCoeff(&m);
    const std::complex<double> v = r(m, k);
    if (std::abs(v) > 0.0) r.col(k) *= std::conj(v) / std::abs(v);
    const double nrm = r.col(k).norm();
    if (nrm > 0.0) r.col(k) /= nrm;
  }
  if (r.cols() > 0 && sorted_ev.size() > 0 && std::abs(sorted_ev(0) - 1.0) <= 1e-8) {
    const std::complex<double> s = r.col(0).sum();
    if (std::abs(s) > 0.0) r.col(0) /= s;
  }
}

void validate_spectrum_options(const SpectrumOptions& o, const char* function) {
  if (!(o.tie_tolerance >= 0.0) || !std::isfinite(o.tie_tolerance))
    fail(function, "tie_tolerance must be finite and >= 0");
  if (!(o.sparse_tolerance > 0.0) || !std::isfinite(o.sparse_tolerance))
    fail(function, "sparse_tolerance must be finite and > 0");
  if (o.sparse_max_restarts < 1) fail(function, "sparse_max_restarts must be >= 1");
  if (o.sparse_ncv < 0) fail(function, "sparse_ncv must be >= 0");
  if (o.sparse_auto_restarts < 1) fail(function, "sparse_auto_restarts must be >= 1");
  if (!(o.detailed_balance_tolerance >= 0.0))
    fail(function, "detailed_balance_tolerance must be >= 0");
  if (!(o.sparse_shift > 0.0) || !std::isfinite(o.sparse_shift))
    fail(function, "sparse_shift must be finite and > 0");
}

SpectrumMethod choose_method(const SpectrumOptions& o, Index n) {
  SpectrumMethod m = o.method;
  if (m == SpectrumMethod::Auto)
    m = static_cast<std::size_t>(n) > o.sparse_threshold ? SpectrumMethod::Sparse
                                                          : SpectrumMethod::Dense;
#ifndef IONMSM_HAVE_SPECTRA
  m = SpectrumMethod::Dense;
#endif
  return m;
}

int requested_k(const SpectrumOptions& o, Index n, bool sparse) {
  if (o.num_eigenvalues > 0) return static_cast<int>(std::min<Index>(o.num_eigenvalues, n));
  return sparse ? static_cast<int>(std::min<Index>(kDefaultSparseEigenvalues, n))
                : static_cast<int>(n);
}

#ifdef IONMSM_HAVE_SPECTRA
int krylov_size(const SpectrumOptions& o, int k, int min_extra, Index n) {
  Index ncv = o.sparse_ncv > 0 ? std::max<Index>(o.sparse_ncv, k + min_extra)
                               : std::max<Index>(2 * k + 1, 20);
  return static_cast<int>(std::min<Index>(ncv, n));
}
#endif

Spectrum dense_general_spectrum(const Eigen::MatrixXd& m, const SpectrumOptions& o) {
  Spectrum out;
  out.method_used = SpectrumMethod::Dense;
  const Index n = m.rows();
  const bool want_vectors = o.right_vectors || o.left_vectors;
  Eigen::EigenSolver<Eigen::MatrixXd> es(m, want_vectors);
  if (es.info() != Eigen::Success) {
    out.status = SpectrumStatus::NotConverged;
    out.message = "Eigen::EigenSolver (Hessenberg QR) did not converge";
    return out;
  }
  const Eigen::VectorXcd ev = es.eigenvalues();
  const std::vector<Index> order = spectral_order(ev, o.tie_tolerance);
  const int k = requested_k(o, n, false);
  Eigen::VectorXcd sorted(n);
  for (Index i = 0; i < n; ++i) sorted(i) = ev(order[static_cast<std::size_t>(i)]);
  out.eigenvalues = sorted.head(k);
  if (!want_vectors) return out;
  const Eigen::MatrixXcd raw = es.eigenvectors();
  Eigen::MatrixXcd r(n, n);
  for (Index i = 0; i < n; ++i) r.col(i) = raw.col(order[static_cast<std::size_t>(i)]);
  normalise_general_right(r, sorted);
  if (o.left_vectors) {
    Eigen::PartialPivLU<Eigen::MatrixXcd> lu(r);
    const double rc = lu.rcond();
    const Eigen::VectorXd u = lu.matrixLU().diagonal().cwiseAbs();
    const Eigen::MatrixXcd rinv = lu.inverse();
    out.left_vectors = rinv.transpose().leftCols(k);  // row k of R^{-1} = l_k^T
    // (rcond is an estimate that can miss exact singularity: check U's diagonal as well)
    if (!(rc > 1e-12) || !(u.minCoeff() > 1e-12 * u.maxCoeff()) ||
        !out.left_vectors.allFinite()) {
      out.status = SpectrumStatus::IllConditionedVectors;
      out.message = "eigenvector matrix is nearly singular (reciprocal condition " + num(rc) +
                    "): the matrix is close to defective, left eigenvectors are unreliable";
    }
  }
  if (o.right_vectors) out.right_vectors = r.leftCols(k);
  return out;
}

// Reversible path on the symmetric matrix S; `sq` = sqrt(pi).
Spectrum finish_symmetric(const Eigen::VectorXd& ev_real, const Eigen::MatrixXd* u,
                          const Eigen::VectorXd& sq, const SpectrumOptions& o, int k) {
  Spectrum out;
  out.symmetrized = true;
  const Eigen::VectorXcd ev = ev_real.cast<std::complex<double>>();
  const std::vector<Index> order = spectral_order(ev, o.tie_tolerance);
  k = std::min<int>(k, static_cast<int>(ev.size()));
  out.eigenvalues.resize(k);
  for (int i = 0; i < k; ++i) out.eigenvalues(i) = ev(order[static_cast<std::size_t>(i)]);
  if (u == nullptr) return out;
  const Index n = sq.size();
  Eigen::MatrixXd uu(n, k);
  for (int i = 0; i < k; ++i) {
    uu.col(i) = u->col(order[static_cast<std::size_t>(i)]);
    Index m = 0;
    uu.col(i).cwiseAbs().maxCoeff(&m);
    if (uu(m, i) < 0.0) uu.col(i) = -uu.col(i);
  }
  if (o.right_vectors)
    out.right_vectors = (sq.asDiagonal() * uu).cast<std::complex<double>>();
  if (o.left_vectors)
    out.left_vectors = (sq.cwiseInverse().asDiagonal() * uu).cast<std::complex<double>>();
  return out;
}

Eigen::VectorXd checked_stationary(const Eigen::VectorXd& pi, Index n, const char* function) {
  if (pi.size() != n)
    fail(function, "stationary distribution has " + std::to_string(pi.size()) +
                       " entries, the matrix " + std::to_string(n) + " rows");
  for (Index i = 0; i < n; ++i)
    if (!std::isfinite(pi(i)) || !(pi(i) > 0.0))
      fail(function, "stationary distribution entry " + std::to_string(i) + " = " + num(pi(i)) +
                         " is not positive and finite");
  return pi / pi.sum();
}

void check_detailed_balance(double max_violation, double max_flux, double tol,
                            const char* function) {
  if (!(max_violation <= tol * max_flux)) {
    fail(function, "detailed balance violated: max |pi_j M_ij - pi_i M_ji| = " +
                       num(max_violation) + " > " + num(tol) + " * max flux " + num(max_flux) +
                       "; use compute_spectrum for non-reversible matrices");
  }
}

#ifdef IONMSM_HAVE_SPECTRA
// Shift-invert for the symmetrised reversible matrix S (eigenvalues in [-1, 1]):
// y = (S - sigma I)^{-1} x = -(sigma I - S)^{-1} x, with sigma I - S SPD for sigma > 1, so a
// sparse LDLT (AMD ordering) replaces the general SparseLU.
class SymShiftInvertOp {
 public:
  using Scalar = double;
  explicit SymShiftInvertOp(const SpMat& s) : s_(s) {}
  Index rows() const { return s_.rows(); }
  Index cols() const { return s_.cols(); }
  void set_shift(double sigma) {
    SpMat id(s_.rows(), s_.cols());
    id.setIdentity();
    const SpMat a = sigma * id - s_;
    ldlt_.compute(a);
    if (ldlt_.info() != Eigen::Success)
      throw std::runtime_error("sparse LDLT of (sigma I - S) failed (sigma = " + num(sigma) + ")");
  }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, s_.rows());
    Eigen::Map<Eigen::VectorXd> y(y_out, s_.rows());
    y = ldlt_.solve(x);
    y *= -1.0;
  }

 private:
  const SpMat& s_;
  Eigen::SimplicialLDLT<SpMat> ldlt_;
};

// SparseMode::Auto: the trial computes kt >= k largest-modulus eigenvalues `ev` (a few more
// than k: see auto_trial_k). On success `chosen` holds the positions of k of them that are
// provably k eigenvalues closest to sigma (> 1), i.e. the set shift-invert would return: they
// are the k computed ones closest to sigma, and every eigenvalue mu NOT computed has
// |mu| <= r = min_i |ev_i|, hence |sigma - mu| >= sigma - r; so it suffices that every chosen
// |sigma - ev_i| <= sigma - r (up to tol, for round-off imaginary parts and ties). Computing a
// few more than k lowers r: a complex eigenvalue at the cut is farther from sigma than a real
// one of the same modulus, and with exactly k computed it could never be proven closest.
// A tie at the cut (the next computed one as close as the last chosen) is accepted only
// between a complex-conjugate pair, which shift-invert cannot order either.
// False if two chosen ones coincide to 1e-9 relative: a single-vector Krylov method finds the
// extra copies of an exactly degenerate eigenvalue (symmetric lattices) only through round-off
// and may return an incomplete multiplicity, so the shift-invert result is used instead.
bool closest_to_shift(const Eigen::VectorXcd& ev, Index k, double sigma, double tol,
                      std::vector<Index>& chosen) {
  chosen.clear();
  if (k <= 0 || ev.size() < k || !ev.allFinite()) return false;
  const double r = ev.cwiseAbs().minCoeff();
  const double scale = ev.cwiseAbs().maxCoeff();
  std::vector<Index> order(static_cast<std::size_t>(ev.size()));
  std::iota(order.begin(), order.end(), Index(0));
  auto dist = [&](Index i) { return std::abs(sigma - ev(i)); };
  std::stable_sort(order.begin(), order.end(), [&](Index x, Index y) {
    const double dx = dist(x), dy = dist(y);
    if (dx != dy) return dx < dy;
    return ev(x).imag() > ev(y).imag();
  });
  for (Index i = 0; i < k; ++i) {
    const Index c = order[static_cast<std::size_t>(i)];
    if (!(dist(c) <= (sigma - r) + tol)) return false;
  }
  if (ev.size() > k) {
    const Index last = order[static_cast<std::size_t>(k - 1)];
    const Index next = order[static_cast<std::size_t>(k)];
    if (dist(next) <= dist(last) + tol &&
        !(ev(last).imag() != 0.0 && std::abs(ev(next) - std::conj(ev(last))) <= 1e-9 * scale))
      return false;
  }
  for (Index i = 0; i < k; ++i)
    for (Index j = i + 1; j < k; ++j)
      if (std::abs(ev(order[static_cast<std::size_t>(i)]) - ev(order[static_cast<std::size_t>(j)])) <=
          1e-9 * scale)
        return false;
  chosen.assign(order.begin(), order.begin() + k);
  return true;
}

// SparseMode::Auto: eigenvalues the trial computes for k requested (a few more, within the
// Krylov subspace size ncv and Spectra's limit n - min_gap).
int auto_trial_k(int k, int ncv, Index n, int min_gap) {
  const int extra = 4;
  const Index kt = std::min<Index>({static_cast<Index>(k) + extra, static_cast<Index>(ncv) - 2,
                                    n - min_gap});
  return static_cast<int>(std::max<Index>(k, kt));
}

// SparseMode::Auto: true if every column of m holds the same multiset of values (exactly),
// e.g. the transition matrix of a translation-invariant periodic lattice. Such a model has an
// exactly degenerate spectrum by symmetry, so the matrix-vector trial would be rejected after
// paying for its convergence: shift-invert runs directly (the same result as a rejected trial).
// O(nnz log) and exact: any perturbation of the counts (real MD data) makes it false.
bool uniform_columns(const SpMat& m) {
  const Index n = m.outerSize();
  if (n < 2) return false;
  std::vector<double> first, col;
  for (Index j = 0; j < n; ++j) {
    col.clear();
    for (SpMat::InnerIterator it(m, j); it; ++it)
      if (it.value() != 0.0) col.push_back(it.value());
    std::sort(col.begin(), col.end());
    if (j == 0)
      first = col;
    else if (col != first)
      return false;
  }
  return true;
}

// init + compute + collect; eigenvalue/vector types follow the solver (real or complex).
template <typename Solver, typename Values, typename Vectors>
void run_spectra(Solver& eigs, const SpectrumOptions& o, bool vectors, Index& nconv,
                 bool& success, int& restarts, Values& values, Vectors& vecs) {
  eigs.init();
  nconv = eigs.compute(Spectra::SortRule::LargestMagn, o.sparse_max_restarts, o.sparse_tolerance,
                       Spectra::SortRule::LargestMagn);
  success = eigs.info() == Spectra::CompInfo::Successful;
  restarts = static_cast<int>(eigs.num_iterations());
  if (nconv > 0) {
    values = eigs.eigenvalues();
    if (vectors) vecs = eigs.eigenvectors();
  }
}

// y = B^T (B x) for the 2-norm by Lanczos.
class AtaOp {
 public:
  using Scalar = double;
  explicit AtaOp(const Eigen::MatrixXd& b) : b_(b), tmp_(b.rows()) {}
  Index rows() const { return b_.cols(); }
  Index cols() const { return b_.cols(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, b_.cols());
    Eigen::Map<Eigen::VectorXd> y(y_out, b_.cols());
    tmp_.noalias() = b_ * x;
    y.noalias() = b_.transpose() * tmp_;
  }

 private:
  const Eigen::MatrixXd& b_;
  mutable Eigen::VectorXd tmp_;
};
#endif

}  // namespace

// ============================================================================ count matrices

Eigen::MatrixXd count_matrix_dense(const LagCounts& lag, std::size_t nsites) {
  check_lag_rows(lag, nsites, "count_matrix_dense");
  const Index n = static_cast<Index>(nsites);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
  for (const TransitionCount& r : lag.rows) c(r.to, r.from) += static_cast<double>(r.count);
  return c;
}

Eigen::SparseMatrix<double> count_matrix_sparse(const LagCounts& lag, std::size_t nsites) {
  check_lag_rows(lag, nsites, "count_matrix_sparse");
  const Index n = static_cast<Index>(nsites);
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(lag.rows.size());
  for (const TransitionCount& r : lag.rows)
    if (r.count > 0) t.emplace_back(r.to, r.from, static_cast<double>(r.count));
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());  // sums duplicates (rows differing in shift)
  c.makeCompressed();
  return c;
}

Eigen::MatrixXd restrict_to_sites(const Eigen::MatrixXd& a,
                                  const std::vector<std::size_t>& sites) {
  check_square(a.rows(), a.cols(), "restrict_to_sites", "the matrix");
  check_site_list(sites, a.rows(), "restrict_to_sites");
  const Index m = static_cast<Index>(sites.size());
  Eigen::MatrixXd out(m, m);
  for (Index b = 0; b < m; ++b)
    for (Index a2 = 0; a2 < m; ++a2)
      out(a2, b) = a(static_cast<Index>(sites[a2]), static_cast<Index>(sites[b]));
  return out;
}

Eigen::SparseMatrix<double> restrict_to_sites(const Eigen::SparseMatrix<double>& a,
                                              const std::vector<std::size_t>& sites) {
  check_square(a.rows(), a.cols(), "restrict_to_sites", "the matrix");
  check_site_list(sites, a.rows(), "restrict_to_sites");
  std::vector<Index> position(static_cast<std::size_t>(a.rows()), -1);
  for (std::size_t k = 0; k < sites.size(); ++k) position[sites[k]] = static_cast<Index>(k);
  std::vector<Eigen::Triplet<double>> t;
  for (std::size_t b = 0; b < sites.size(); ++b)
    for (SpMat::InnerIterator it(a, static_cast<Index>(sites[b])); it; ++it) {
      const Index p = position[static_cast<std::size_t>(it.row())];
      if (p >= 0) t.emplace_back(p, static_cast<Index>(b), it.value());
    }
  const Index m = static_cast<Index>(sites.size());
  SpMat out(m, m);
  out.setFromTriplets(t.begin(), t.end());
  out.makeCompressed();
  return out;
}

// ============================================================================ connectivity

const char* drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::NeverVisited: return "never visited";
    case DropReason::NotStronglyConnected: return "not strongly connected";
  }
  return "unknown";
}

StronglyConnectedComponents strongly_connected_components(std::size_t n,
                                                          const std::vector<Edge>& edges) {
  // compressed adjacency: the targets of node v are adj[head[v] .. head[v + 1])
  std::vector<std::size_t> head(n + 1, 0);
  for (const auto& e : edges) {
    if (e.first >= n || e.second >= n)
      throw std::invalid_argument("strongly_connected_components: edge (" +
                                  std::to_string(e.first) + ", " + std::to_string(e.second) +
                                  ") outside the " + std::to_string(n) + " nodes");
    ++head[e.first + 1];
  }
  for (std::size_t i = 0; i < n; ++i) head[i + 1] += head[i];
  std::vector<std::size_t> adj(edges.size()), fill(head.begin(), head.end() - 1);
  for (const auto& e : edges) adj[fill[e.first]++] = e.second;

  // iterative Tarjan: no recursion, so 10^5+ nodes cannot overflow the stack
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> index(n, kNone), low(n, 0), stack;
  std::vector<char> on_stack(n, 0);
  StronglyConnectedComponents out;
  out.component.assign(n, 0);
  std::vector<std::pair<std::size_t, std::size_t>> call;  // (node, next edge position)
  std::size_t counter = 0;
  auto open = [&](std::size_t v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = 1;
    call.emplace_back(v, head[v]);
  };
  for (std::size_t s = 0; s < n; ++s) {
    if (index[s] != kNone) continue;
    open(s);
    while (!call.empty()) {
      const std::size_t v = call.back().first;
      if (call.back().second < head[v + 1]) {
        const std::size_t w = adj[call.back().second++];
        if (index[w] == kNone)
          open(w);
        else if (on_stack[w])
          low[v] = std::min(low[v], index[w]);
        continue;
      }
      if (low[v] == index[v]) {
        for (;;) {
          const std::size_t w = stack.back();
          stack.pop_back();
          on_stack[w] = 0;
          out.component[w] = out.count;
          if (w == v) break;
        }
        ++out.count;
      }
      call.pop_back();
      if (!call.empty()) {
        const std::size_t u = call.back().first;
        low[u] = std::min(low[u], low[v]);
      }
    }
  }
  return out;
}

ConnectedSet largest_connected_set(const Eigen::SparseMatrix<double>& counts) {
  const char* fn = "largest_connected_set";
  check_counts(counts, fn);
  const Index n = counts.rows();
  const std::size_t un = static_cast<std::size_t>(n);

  // Edges j -> i (C(i,j) > 0, i != j); visited flags. Sites never visited belong to no
  // component (-1) and are not counted in n_components.
  std::vector<Edge> edges;
  std::vector<char> visited(un, 0);
  edges.reserve(static_cast<std::size_t>(counts.nonZeros()));
  for (Index j = 0; j < n; ++j) {
    for (SpMat::InnerIterator it(counts, j); it; ++it) {
      if (!(it.value() > 0.0)) continue;
      visited[static_cast<std::size_t>(it.row())] = 1;
      visited[static_cast<std::size_t>(j)] = 1;
      if (it.row() != j)
        edges.emplace_back(static_cast<std::size_t>(j), static_cast<std::size_t>(it.row()));
    }
  }
  const StronglyConnectedComponents scc = strongly_connected_components(un, edges);
  // relabel the components of visited sites 0 .. ncomp-1
  std::vector<Index> comp(un, -1), label(scc.count, -1);
  Index ncomp = 0;
  for (std::size_t v = 0; v < un; ++v) {
    if (!visited[v]) continue;
    Index& l = label[scc.component[v]];
    if (l < 0) l = ncomp++;
    comp[v] = l;
  }

  // Pick the largest component with at least one internal count.
  const std::size_t nc = static_cast<std::size_t>(ncomp);
  std::vector<std::size_t> size(nc, 0), lowest(nc, un);
  std::vector<double> internal(nc, 0.0);
  for (std::size_t v = 0; v < un; ++v) {
    if (comp[v] < 0) continue;
    const std::size_t c = static_cast<std::size_t>(comp[v]);
    ++size[c];
    lowest[c] = std::min(lowest[c], v);
  }
  for (Index j = 0; j < n; ++j)
    for (SpMat::InnerIterator it(counts, j); it; ++it) {
      const Index ci = comp[static_cast<std::size_t>(it.row())];
      if (it.value() > 0.0 && ci >= 0 && ci == comp[static_cast<std::size_t>(j)])
        internal[static_cast<std::size_t>(ci)] += it.value();
    }
  Index best = -1;
  for (std::size_t c = 0; c < nc; ++c) {
    if (!(internal[c] > 0.0)) continue;
    if (best < 0) {
      best = static_cast<Index>(c);
      continue;
    }
    const std::size_t b = static_cast<std::size_t>(best);
    if (size[c] > size[b] || (size[c] == size[b] && internal[c] > internal[b]) ||
        (size[c] == size[b] && internal[c] == internal[b] && lowest[c] < lowest[b]))
      best = static_cast<Index>(c);
  }

  ConnectedSet out;
  out.n_sites = un;
  out.n_components = nc;
  for (std::size_t v = 0; v < un; ++v) {
    if (best >= 0 && comp[v] == best) {
      out.kept.push_back(v);
    } else {
      out.dropped.push_back({v, visited[v] ? DropReason::NotStronglyConnected
                                           : DropReason::NeverVisited});
    }
  }
  return out;
}

ConnectedSet largest_connected_set(const Eigen::MatrixXd& counts) {
  check_counts(counts, "largest_connected_set");
  const SpMat s = counts.sparseView();
  return largest_connected_set(s);
}

// ============================================================================ estimators

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
  check_square(m.rows(), m.cols(), fn, "the transition matrix");
  if (m.rows() == 0) fail(fn, "empty transition matrix");
  check_finite(m, fn, "the transition matrix");
  check_column_stochastic(column_sums(m), fn);
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
  check_square(m.rows(), m.cols(), fn, "the transition matrix");
  if (m.rows() == 0) fail(fn, "empty transition matrix");
  check_finite(m, fn, "the transition matrix");
  check_column_stochastic(column_sums(m), fn);
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
  static_cast<ReversibleMleInfo&>(r) = static_cast<const ReversibleMleInfo&>(rs);
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
    model.estimator_info = static_cast<const ReversibleMleInfo&>(r);
    model.transition_matrix = std::move(r.transition_matrix);
    model.stationary = std::move(r.stationary);
  }
  return model;
}

// ============================================================================ spectrum

const char* spectrum_status_name(SpectrumStatus status) {
  switch (status) {
    case SpectrumStatus::Ok: return "ok";
    case SpectrumStatus::NotConverged: return "not converged";
    case SpectrumStatus::IllConditionedVectors: return "ill-conditioned eigenvectors";
  }
  return "unknown";
}

Spectrum compute_spectrum(const Eigen::MatrixXd& m, const SpectrumOptions& options) {
  const char* fn = "compute_spectrum";
  validate_spectrum_options(options, fn);
  check_square(m.rows(), m.cols(), fn, "the matrix");
  if (m.rows() == 0) fail(fn, "empty matrix");
  check_finite(m, fn, "the matrix");
  if (choose_method(options, m.rows()) == SpectrumMethod::Sparse) {
    const SpMat s = m.sparseView();
    SpectrumOptions o = options;
    o.method = SpectrumMethod::Sparse;
    return compute_spectrum(s, o);
  }
  return dense_general_spectrum(m, options);
}

Spectrum compute_spectrum(const Eigen::SparseMatrix<double>& m, const SpectrumOptions& options) {
  const char* fn = "compute_spectrum";
  validate_spectrum_options(options, fn);
  check_square(m.rows(), m.cols(), fn, "the matrix");
  const Index n = m.rows();
  if (n == 0) fail(fn, "empty matrix");
  check_finite(m, fn, "the matrix");
  const SpectrumMethod method = choose_method(options, n);
  const int k = requested_k(options, n, method == SpectrumMethod::Sparse);
  if (method == SpectrumMethod::Dense || k > n - 2) {  // Spectra needs k <= n - 2
    SpectrumOptions o = options;
    o.num_eigenvalues = k;
    return dense_general_spectrum(Eigen::MatrixXd(m), o);
  }
#ifdef IONMSM_HAVE_SPECTRA
  if (options.left_vectors)
    fail(fn, "left eigenvectors are not available on the sparse non-reversible path: use "
             "SpectrumMethod::Dense, or compute_reversible_spectrum for a reversible model");
  SpMat a = m;
  a.makeCompressed();
  const int ncv = krylov_size(options, k, 2, n);
  Spectrum out;
  out.method_used = SpectrumMethod::Sparse;
  Eigen::VectorXcd ev;
  Eigen::MatrixXcd raw;
  Index nconv = 0;
  bool success = false;
  const char* solver_name = "";
  try {
    bool done = false;
    const bool trial = options.sparse_mode == SparseMode::Auto && !uniform_columns(a);
    if (options.sparse_mode == SparseMode::LargestModulus || trial) {
      solver_name = "GenEigsSolver";
      SpectrumOptions o = options;
      if (trial) o.sparse_max_restarts = std::min(o.sparse_max_restarts, o.sparse_auto_restarts);
      const int kt = trial ? auto_trial_k(k, ncv, n, 2) : k;
      try {
        Spectra::SparseGenMatProd<double> op(a);
        Spectra::GenEigsSolver<Spectra::SparseGenMatProd<double>> eigs(op, kt, ncv);
        run_spectra(eigs, o, options.right_vectors, nconv, success, out.sparse_restarts, ev,
                    raw);
      } catch (const std::exception&) {
        if (!trial) throw;
        success = false;  // a failed trial only means: shift-invert below
      }
      out.sparse_mode_used = SparseMode::LargestModulus;
      done = !trial;
      std::vector<Index> chosen;
      if (trial && success && nconv == kt &&
          closest_to_shift(ev, k, 1.0 + options.sparse_shift, options.tie_tolerance, chosen)) {
        Eigen::VectorXcd ev_k(k);
        Eigen::MatrixXcd raw_k(options.right_vectors ? n : 0, options.right_vectors ? k : 0);
        for (Index i = 0; i < k; ++i) {
          ev_k(i) = ev(chosen[static_cast<std::size_t>(i)]);
          if (options.right_vectors) raw_k.col(i) = raw.col(chosen[static_cast<std::size_t>(i)]);
        }
        ev = std::move(ev_k);
        raw = std::move(raw_k);
        nconv = k;
        done = true;
      }
    }
    if (!done && options.sparse_mode == SparseMode::Auto && !options.sparse_auto_fallback) {
      out.status = SpectrumStatus::NotConverged;
      out.sparse_mode_used = SparseMode::ShiftInvert;
      out.message = "Auto trial rejected (no shift-invert fallback requested)";
      return out;
    }
    if (!done) {
      ev.resize(0);
      raw.resize(0, 0);
      nconv = 0;
      success = false;
      solver_name = "GenEigsRealShiftSolver";
      Spectra::SparseGenRealShiftSolve<double> op(a);
      Spectra::GenEigsRealShiftSolver<Spectra::SparseGenRealShiftSolve<double>> eigs(
          op, k, ncv, 1.0 + options.sparse_shift);
      run_spectra(eigs, options, options.right_vectors, nconv, success, out.sparse_restarts, ev,
                  raw);
      out.sparse_mode_used = SparseMode::ShiftInvert;
    }
  } catch (const std::exception& e) {
    out.status = SpectrumStatus::NotConverged;
    out.message = std::string("Spectra ") + solver_name + " failed: " + e.what();
    return out;
  }
  if (!success) {
    out.status = SpectrumStatus::NotConverged;
    out.message = std::string("Spectra ") + solver_name + ": " + std::to_string(nconv) + " of " +
                  std::to_string(k) + " eigenvalues converged after " +
                  std::to_string(out.sparse_restarts) +
                  " restarts; raise sparse_max_restarts or sparse_ncv, or use the dense method";
  }
  if (ev.size() == 0) return out;
  const std::vector<Index> order = spectral_order(ev, options.tie_tolerance);
  out.eigenvalues.resize(ev.size());
  for (Index i = 0; i < ev.size(); ++i) out.eigenvalues(i) = ev(order[static_cast<std::size_t>(i)]);
  if (options.right_vectors) {
    Eigen::MatrixXcd r(n, ev.size());
    for (Index i = 0; i < ev.size(); ++i) r.col(i) = raw.col(order[static_cast<std::size_t>(i)]);
    normalise_general_right(r, out.eigenvalues);
    out.right_vectors = std::move(r);
  }
  return out;
#else
  fail(fn, "sparse spectrum requested but ionmsm was built without Spectra");
#endif
}

namespace {
// max |F_ij - F_ji| and max F_ij of the flux F(i,j) = pi_j M(i,j)
void flux_balance(const SpMat& m, const Eigen::VectorXd& pi, double& max_violation,
                  double& max_flux) {
  const SpMat flux = m * pi.asDiagonal();
  const SpMat diff = flux - SpMat(flux.transpose());
  max_violation = 0.0;
  max_flux = 0.0;
  for (Index j = 0; j < diff.outerSize(); ++j)
    for (SpMat::InnerIterator it(diff, j); it; ++it)
      max_violation = std::max(max_violation, std::abs(it.value()));
  for (Index j = 0; j < flux.outerSize(); ++j)
    for (SpMat::InnerIterator it(flux, j); it; ++it) max_flux = std::max(max_flux, it.value());
}
}  // namespace

double detailed_balance_violation(const Eigen::SparseMatrix<double>& m,
                                  const Eigen::VectorXd& stationary) {
  const char* fn = "detailed_balance_violation";
  check_square(m.rows(), m.cols(), fn, "the transition matrix");
  if (m.rows() == 0) fail(fn, "empty matrix");
  check_finite(m, fn, "the transition matrix");
  const Eigen::VectorXd pi = checked_stationary(stationary, m.rows(), fn);
  double max_violation = 0.0, max_flux = 0.0;
  flux_balance(m, pi, max_violation, max_flux);
  if (!(max_flux > 0.0)) fail(fn, "the transition matrix has no positive entry");
  return max_violation / max_flux;
}

Spectrum compute_reversible_spectrum(const Eigen::MatrixXd& m, const Eigen::VectorXd& stationary,
                                     const SpectrumOptions& options) {
  const char* fn = "compute_reversible_spectrum";
  validate_spectrum_options(options, fn);
  check_square(m.rows(), m.cols(), fn, "the transition matrix");
  const Index n = m.rows();
  if (n == 0) fail(fn, "empty matrix");
  check_finite(m, fn, "the transition matrix");
  check_column_stochastic(column_sums(m), fn);
  const Eigen::VectorXd pi = checked_stationary(stationary, n, fn);
  if (choose_method(options, n) == SpectrumMethod::Sparse) {
    const SpMat s = m.sparseView();
    SpectrumOptions o = options;
    o.method = SpectrumMethod::Sparse;
    return compute_reversible_spectrum(s, pi, o);
  }
  const Eigen::MatrixXd flux = m * pi.asDiagonal();  // F(i,j) = pi_j M(i,j)
  check_detailed_balance((flux - flux.transpose()).cwiseAbs().maxCoeff(), flux.maxCoeff(),
                         options.detailed_balance_tolerance, fn);
  const Eigen::VectorXd sq = pi.cwiseSqrt();
  Eigen::MatrixXd s = sq.cwiseInverse().asDiagonal() * m * sq.asDiagonal();
  s = 0.5 * (s + s.transpose()).eval();
  const bool want_vectors = options.right_vectors || options.left_vectors;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(
      s, want_vectors ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
  Spectrum out;
  if (es.info() != Eigen::Success) {
    out.symmetrized = true;
    out.status = SpectrumStatus::NotConverged;
    out.message = "Eigen::SelfAdjointEigenSolver did not converge";
    return out;
  }
  const Eigen::MatrixXd* u = want_vectors ? &es.eigenvectors() : nullptr;
  out = finish_symmetric(es.eigenvalues(), u, sq, options, requested_k(options, n, false));
  out.method_used = SpectrumMethod::Dense;
  return out;
}

Spectrum compute_reversible_spectrum(const Eigen::SparseMatrix<double>& m,
                                     const Eigen::VectorXd& stationary,
                                     const SpectrumOptions& options) {
  const char* fn = "compute_reversible_spectrum";
  validate_spectrum_options(options, fn);
  check_square(m.rows(), m.cols(), fn, "the transition matrix");
  const Index n = m.rows();
  if (n == 0) fail(fn, "empty matrix");
  check_finite(m, fn, "the transition matrix");
  check_column_stochastic(column_sums(m), fn);
  const Eigen::VectorXd pi = checked_stationary(stationary, n, fn);
  const SpectrumMethod method = choose_method(options, n);
  const int k = requested_k(options, n, method == SpectrumMethod::Sparse);
  if (method == SpectrumMethod::Dense || k > n - 1) {  // Spectra needs k <= n - 1
    SpectrumOptions o = options;
    o.method = SpectrumMethod::Dense;
    o.num_eigenvalues = k;
    return compute_reversible_spectrum(Eigen::MatrixXd(m), pi, o);
  }
#ifdef IONMSM_HAVE_SPECTRA
  double max_violation = 0.0, max_flux = 0.0;
  flux_balance(m, pi, max_violation, max_flux);
  check_detailed_balance(max_violation, max_flux, options.detailed_balance_tolerance, fn);

  const Eigen::VectorXd sq = pi.cwiseSqrt();
  const SpMat half = sq.cwiseInverse().asDiagonal() * m * sq.asDiagonal();
  SpMat s = 0.5 * (half + SpMat(half.transpose()));
  s.makeCompressed();
  const int ncv = krylov_size(options, k, 1, n);
  const bool want_vectors = options.right_vectors || options.left_vectors;
  Eigen::VectorXd ev;
  Eigen::MatrixXd u;
  Index nconv = 0;
  bool success = false;
  int restarts = 0;
  const char* solver_name = "";
  Spectrum out;
  SparseMode mode_used = SparseMode::ShiftInvert;
  try {
    bool done = false;
    const bool trial = options.sparse_mode == SparseMode::Auto && !uniform_columns(m);
    if (options.sparse_mode == SparseMode::LargestModulus || trial) {
      solver_name = "SymEigsSolver";
      SpectrumOptions o = options;
      if (trial) o.sparse_max_restarts = std::min(o.sparse_max_restarts, o.sparse_auto_restarts);
      const int kt = trial ? auto_trial_k(k, ncv, n, 1) : k;
      try {
        Spectra::SparseSymMatProd<double> op(s);
        Spectra::SymEigsSolver<Spectra::SparseSymMatProd<double>> eigs(op, kt, ncv);
        run_spectra(eigs, o, want_vectors, nconv, success, restarts, ev, u);
      } catch (const std::exception&) {
        if (!trial) throw;
        success = false;  // a failed trial only means: shift-invert below
      }
      mode_used = SparseMode::LargestModulus;
      done = !trial;
      std::vector<Index> chosen;
      if (trial && success && nconv == kt &&
          closest_to_shift(Eigen::VectorXcd(ev.cast<std::complex<double>>()), k,
                           1.0 + options.sparse_shift, options.tie_tolerance, chosen)) {
        Eigen::VectorXd ev_k(k);
        Eigen::MatrixXd u_k(want_vectors ? n : 0, want_vectors ? k : 0);
        for (Index i = 0; i < k; ++i) {
          ev_k(i) = ev(chosen[static_cast<std::size_t>(i)]);
          if (want_vectors) u_k.col(i) = u.col(chosen[static_cast<std::size_t>(i)]);
        }
        ev = std::move(ev_k);
        u = std::move(u_k);
        nconv = k;
        done = true;
      }
    }
    if (!done && options.sparse_mode == SparseMode::Auto && !options.sparse_auto_fallback) {
      out.symmetrized = true;
      out.method_used = SpectrumMethod::Sparse;
      out.status = SpectrumStatus::NotConverged;
      out.sparse_mode_used = SparseMode::ShiftInvert;
      out.message = "Auto trial rejected (no shift-invert fallback requested)";
      return out;
    }
    if (!done) {
      ev.resize(0);
      u.resize(0, 0);
      nconv = 0;
      success = false;
      solver_name = "SymEigsShiftSolver";
      SymShiftInvertOp op(s);
      Spectra::SymEigsShiftSolver<SymShiftInvertOp> eigs(op, k, ncv, 1.0 + options.sparse_shift);
      run_spectra(eigs, options, want_vectors, nconv, success, restarts, ev, u);
      mode_used = SparseMode::ShiftInvert;
    }
  } catch (const std::exception& e) {
    out.symmetrized = true;
    out.method_used = SpectrumMethod::Sparse;
    out.status = SpectrumStatus::NotConverged;
    out.message = std::string("Spectra ") + solver_name + " failed: " + e.what();
    return out;
  }
  if (ev.size() > 0)
    out = finish_symmetric(ev, want_vectors ? &u : nullptr, sq, options,
                           static_cast<int>(ev.size()));
  out.symmetrized = true;
  out.method_used = SpectrumMethod::Sparse;
  out.sparse_restarts = restarts;
  out.sparse_mode_used = mode_used;
  if (!success) {
    out.status = SpectrumStatus::NotConverged;
    out.message = std::string("Spectra ") + solver_name + ": " + std::to_string(nconv) + " of " +
                  std::to_string(k) + " eigenvalues converged after " +
                  std::to_string(restarts) +
                  " restarts; raise sparse_max_restarts or sparse_ncv, or use the dense method";
  }
  return out;
#else
  fail(fn, "sparse spectrum requested but ionmsm was built without Spectra");
#endif
}

// ============================================================================ implied timescales

const char* timescale_status_name(TimescaleStatus status) {
  switch (status) {
    case TimescaleStatus::Ok: return "ok";
    case TimescaleStatus::Stationary: return "stationary";
    case TimescaleStatus::NonPositive: return "non-positive";
    case TimescaleStatus::Complex: return "complex";
    case TimescaleStatus::Invalid: return "invalid";
  }
  return "unknown";
}

std::vector<ImpliedTimescale> implied_timescales(const Eigen::VectorXcd& eigenvalues,
                                                 double lag_time,
                                                 const TimescaleOptions& options) {
  const char* fn = "implied_timescales";
  if (!std::isfinite(lag_time) || !(lag_time > 0.0))
    fail(fn, "lag_time must be finite and > 0, got " + num(lag_time));
  if (!(options.imag_tolerance >= 0.0) || !(options.stationary_tolerance >= 0.0))
    fail(fn, "tolerances must be >= 0");
  std::vector<ImpliedTimescale> out;
  out.reserve(static_cast<std::size_t>(eigenvalues.size()));
  for (Index k = 0; k < eigenvalues.size(); ++k) {
    ImpliedTimescale t;
    t.eigenvalue = eigenvalues(k);
    const double re = t.eigenvalue.real(), im = t.eigenvalue.imag();
    t.timescale = kNaN;
    if (!std::isfinite(re) || !std::isfinite(im)) {
      t.status = TimescaleStatus::Invalid;
    } else if (std::abs(im) > options.imag_tolerance) {
      t.status = TimescaleStatus::Complex;
    } else if (re <= 0.0) {
      t.status = TimescaleStatus::NonPositive;
    } else if (std::abs(re - 1.0) <= options.stationary_tolerance) {
      t.status = TimescaleStatus::Stationary;
      t.timescale = std::numeric_limits<double>::infinity();
    } else if (re > 1.0) {
      t.status = TimescaleStatus::Invalid;
    } else {
      t.status = TimescaleStatus::Ok;
      t.timescale = -lag_time / std::log(re);
    }
    out.push_back(t);
  }
  return out;
}

std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<MarkovModel>& models,
                                                        double time_per_step,
                                                        const ItsOptions& options) {
  const char* fn = "implied_timescales_over_lags";
  if (!std::isfinite(time_per_step) || !(time_per_step > 0.0))
    fail(fn, "time_per_step must be finite and > 0, got " + num(time_per_step));
  SpectrumOptions so = options.spectrum;
  so.right_vectors = so.left_vectors = false;
  std::vector<LagTimescales> out;
  out.reserve(models.size());
  for (const MarkovModel& model : models) {
    if (model.lag_steps <= 0)
      fail(fn, "lag_steps must be > 0, got " + std::to_string(model.lag_steps));
    LagTimescales lt;
    lt.lag_steps = model.lag_steps;
    lt.lag_time = static_cast<double>(model.lag_steps) * time_per_step;
    lt.n_kept = static_cast<std::size_t>(model.transition_matrix.rows());
    const Spectrum sp = model.estimator == Estimator::Reversible
                            ? compute_reversible_spectrum(model.transition_matrix,
                                                          model.stationary, so)
                            : compute_spectrum(model.transition_matrix, so);
    lt.eigenvalues = sp.eigenvalues;
    lt.timescales = implied_timescales(sp.eigenvalues, lt.lag_time, options.timescales);
    lt.spectrum_status = sp.status;
    lt.estimator_status = model.estimator_info.status;
    if (model.estimator_info.status != ReversibleMleStatus::Converged)
      lt.message = model.estimator_info.message;
    if (sp.status != SpectrumStatus::Ok)
      lt.message += (lt.message.empty() ? "" : "; ") + sp.message;
    out.push_back(std::move(lt));
  }
  return out;
}

std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<LagCounts>& lags,
                                                        std::size_t nsites, double time_per_step,
                                                        const ItsOptions& options) {
  if (!std::isfinite(time_per_step) || !(time_per_step > 0.0))
    fail("implied_timescales_over_lags",
         "time_per_step must be finite and > 0, got " + num(time_per_step));
  std::vector<MarkovModel> models;
  models.reserve(lags.size());
  for (const LagCounts& lag : lags) models.push_back(estimate_markov_model(lag, nsites, options.msm));
  return implied_timescales_over_lags(models, time_per_step, options);
}

// ============================================================================ Chapman-Kolmogorov

double matrix_two_norm(const Eigen::MatrixXd& a, std::size_t dense_svd_max) {
  if (a.size() == 0) return 0.0;
  if (!a.allFinite()) fail("matrix_two_norm", "the matrix has a non-finite entry");
  const double f = a.norm();
  if (f == 0.0) return 0.0;
  const Index small = std::min(a.rows(), a.cols());
#ifdef IONMSM_HAVE_SPECTRA
  if (static_cast<std::size_t>(small) > dense_svd_max && a.cols() >= 3) {
    const Eigen::MatrixXd b = a / f;  // ||b||_2 in [1/sqrt(rank), 1]: no tiny eigenvalues
    AtaOp op(b);
    Spectra::SymEigsSolver<AtaOp> eigs(op, 1, static_cast<Index>(std::min<Index>(a.cols(), 20)));
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestAlge, 1000, 1e-13, Spectra::SortRule::LargestAlge);
    if (eigs.info() == Spectra::CompInfo::Successful)
      return f * std::sqrt(std::max(0.0, eigs.eigenvalues()(0)));
  }
#else
  (void)dense_svd_max;
  (void)small;
#endif
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a);
  return svd.singularValues()(0);
}

LagTransitionMatrix lag_transition_matrix(const MarkovModel& model) {
  LagTransitionMatrix t;
  t.lag_steps = model.lag_steps;
  t.sites = model.connectivity.kept;
  t.transition_matrix = Eigen::MatrixXd(model.transition_matrix);
  return t;
}

namespace {

struct CkModel {
  std::int64_t lag = 0;
  std::vector<std::size_t> sites;
  SpMat m;  // column-stochastic, compressed
};

#ifdef IONMSM_HAVE_SPECTRA
// y = A^T (A x) with A = s * (S - M^n) (n >= 1) or A = s * S (n == 0), all sparse, matrix-free.
class CkAtaOp {
 public:
  using Scalar = double;
  CkAtaOp(const SpMat& sampled, const SpMat* base, int n, double scale)
      : s_(sampled), m_(base), n_(n), scale2_(scale * scale), t1_(sampled.rows()),
        t2_(sampled.rows()) {}
  Index rows() const { return s_.cols(); }
  Index cols() const { return s_.cols(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, s_.cols());
    Eigen::Map<Eigen::VectorXd> y(y_out, s_.cols());
    // a = A x
    a_.noalias() = s_ * x;
    if (n_ > 0) {
      t1_ = x;
      for (int k = 0; k < n_; ++k) {
        t2_.noalias() = (*m_) * t1_;
        t1_.swap(t2_);
      }
      a_ -= t1_;
    }
    // y = A^T a
    y.noalias() = s_.transpose() * a_;
    if (n_ > 0) {
      t1_ = a_;
      for (int k = 0; k < n_; ++k) {
        t2_.noalias() = m_->transpose() * t1_;
        t1_.swap(t2_);
      }
      y -= t1_;
    }
    y *= scale2_;
  }

 private:
  const SpMat& s_;
  const SpMat* m_;
  int n_;
  double scale2_;
  mutable Eigen::VectorXd a_, t1_, t2_;
};

// Largest singular value of A (see CkAtaOp) by Lanczos on A^T A; false if not converged.
bool ck_two_norm_matrix_free(const SpMat& sampled, const SpMat* base, int n, double scale,
                             double tol, double& out) {
  const Index k = sampled.cols();
  for (int attempt = 0; attempt < 2; ++attempt) {
    CkAtaOp op(sampled, base, n, scale);
    const Index ncv = std::min<Index>(k, attempt == 0 ? 20 : 60);
    Spectra::SymEigsSolver<CkAtaOp> eigs(op, 1, ncv);
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestAlge, attempt == 0 ? 1000 : 10000, tol,
                 Spectra::SortRule::LargestAlge);
    if (eigs.info() == Spectra::CompInfo::Successful) {
      out = std::sqrt(std::max(0.0, eigs.eigenvalues()(0))) / scale;
      return true;
    }
  }
  return false;
}
#endif

std::vector<CkRecord> ck_run(std::vector<CkModel>& ms, const CkOptions& options) {
  const char* fn = "chapman_kolmogorov_test";
  std::sort(ms.begin(), ms.end(), [](const CkModel& a, const CkModel& b) { return a.lag < b.lag; });
  for (std::size_t k = 1; k < ms.size(); ++k)
    if (ms[k].lag == ms[k - 1].lag) fail(fn, "lag " + std::to_string(ms[k].lag) + " given twice");

  // The base lags are independent: up to two threads, each base lag's records kept apart and
  // concatenated in lag order (the result does not depend on the scheduling; the first error in
  // base-lag order is rethrown).
  std::vector<std::vector<CkRecord>> per_base(ms.size());
  auto run_base = [&](std::size_t a) {
    std::vector<CkRecord>& out = per_base[a];
    const std::int64_t tau = ms[a].lag;
    std::vector<std::size_t> cached_sites;
    Eigen::MatrixXd base, power;
    int power_n = 0;
    for (std::size_t b = a + 1; b < ms.size(); ++b) {
      if (ms[b].lag % tau != 0) continue;
      const std::int64_t n64 = ms[b].lag / tau;
      if (n64 < 2 || (options.max_n > 0 && n64 > options.max_n)) continue;
      const int n = static_cast<int>(n64);
      // Common set: positions of the shared sites in both models.
      std::vector<std::size_t> common, ia, ib;
      {
        std::size_t x = 0, y = 0;
        while (x < ms[a].sites.size() && y < ms[b].sites.size()) {
          if (ms[a].sites[x] < ms[b].sites[y]) {
            ++x;
          } else if (ms[b].sites[y] < ms[a].sites[x]) {
            ++y;
          } else {
            common.push_back(ms[a].sites[x]);
            ia.push_back(x++);
            ib.push_back(y++);
          }
        }
      }
      SpMat ma, mb;
      for (;;) {  // drop columns with no weight left inside the common set, until stable
        const Index k = static_cast<Index>(common.size());
        ma = restrict_to_sites(ms[a].m, ia);
        mb = restrict_to_sites(ms[b].m, ib);
        const Eigen::VectorXd sa = column_sums(ma), sb = column_sums(mb);
        std::vector<std::size_t> keep;
        for (Index j = 0; j < k; ++j)
          if (sa(j) > 0.0 && sb(j) > 0.0) keep.push_back(static_cast<std::size_t>(j));
        if (static_cast<Index>(keep.size()) == k) {
          for (Index j = 0; j < k; ++j) {
            for (SpMat::InnerIterator it(ma, j); it; ++it) it.valueRef() = it.value() / sa(j);
            for (SpMat::InnerIterator it(mb, j); it; ++it) it.valueRef() = it.value() / sb(j);
          }
          break;
        }
        std::vector<std::size_t> c2, ia2, ib2;
        for (std::size_t j : keep) {
          c2.push_back(common[j]);
          ia2.push_back(ia[j]);
          ib2.push_back(ib[j]);
        }
        common.swap(c2);
        ia.swap(ia2);
        ib.swap(ib2);
      }
      CkRecord rec;
      rec.lag_steps = tau;
      rec.n = n;
      rec.n_sites = common.size();
      if (common.empty()) {
        rec.err = kNaN;
        out.push_back(rec);
        continue;
      }
#ifdef IONMSM_HAVE_SPECTRA
      if (common.size() > options.dense_max_sites && common.size() >= 3) {
        rec.matrix_free = true;
        double s_norm = 0.0, a_norm = 0.0;
        // ||S||_2 >= 1 for a column-stochastic S (1^T S = 1^T): no rescaling needed
        rec.converged =
            ck_two_norm_matrix_free(mb, nullptr, 0, 1.0, options.lanczos_tolerance, s_norm) &&
            s_norm > 0.0 &&
            ck_two_norm_matrix_free(mb, &ma, n, 1.0 / s_norm, options.lanczos_tolerance, a_norm);
        rec.err = rec.converged ? a_norm / s_norm : kNaN;
        out.push_back(rec);
        continue;
      }
#endif
      const Eigen::MatrixXd da(ma), db(mb);
      if (power_n == 0 || common != cached_sites) {
        cached_sites = common;
        base = da;
        power = da;
        power_n = 1;
      }
      Eigen::MatrixXd next;
      while (power_n < n) {
        next.noalias() = power * base;
        power.swap(next);
        ++power_n;
      }
      rec.err = matrix_two_norm(db - power, options.dense_svd_max) /
                matrix_two_norm(db, options.dense_svd_max);
      out.push_back(rec);
    }
  };
  parallel_for(ms.size(), [&](std::size_t a, int) { run_base(a); });
  std::vector<CkRecord> out;
  for (auto& v : per_base) out.insert(out.end(), v.begin(), v.end());
  return out;
}

void ck_check_sites(CkModel& c, Index rows, const std::string& which, const char* fn) {
  if (c.sites.empty()) {
    c.sites.resize(static_cast<std::size_t>(rows));
    std::iota(c.sites.begin(), c.sites.end(), std::size_t(0));
  }
  if (static_cast<Index>(c.sites.size()) != rows)
    fail(fn, which + ": " + std::to_string(c.sites.size()) + " sites for a " +
                 std::to_string(rows) + " x " + std::to_string(rows) + " matrix");
  for (std::size_t k = 1; k < c.sites.size(); ++k)
    if (c.sites[k] <= c.sites[k - 1]) fail(fn, which + ": sites must be strictly increasing");
}

}  // namespace

namespace {

// One validated CK model from a lag's transition matrix (dense or sparse) and its site list.
template <class Matrix>
CkModel make_ck_model(std::int64_t lag_steps, const Matrix& m, const std::vector<std::size_t>& sites,
                      const char* fn) {
  const std::string which = "lag " + std::to_string(lag_steps);
  if (lag_steps <= 0) fail(fn, which + ": lag_steps must be > 0");
  check_square(m.rows(), m.cols(), fn, "each transition matrix");
  if (m.rows() == 0) fail(fn, which + ": empty transition matrix");
  check_finite(m, fn, "a transition matrix");
  check_column_stochastic(column_sums(m), fn);
  CkModel c;
  c.lag = lag_steps;
  c.sites = sites;
  ck_check_sites(c, m.rows(), which, fn);
  if constexpr (std::is_same_v<Matrix, SpMat>)
    c.m = m;
  else
    c.m = m.sparseView(0.0, 0.0);  // drops exact zeros only: the same numbers
  c.m.makeCompressed();
  return c;
}

}  // namespace

std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<LagTransitionMatrix>& models,
                                              const CkOptions& options) {
  const char* fn = "chapman_kolmogorov_test";
  if (options.max_n < 0) fail(fn, "max_n must be >= 0");
  std::vector<CkModel> ms;
  ms.reserve(models.size());
  for (const LagTransitionMatrix& t : models)
    ms.push_back(make_ck_model(t.lag_steps, t.transition_matrix, t.sites, fn));
  return ck_run(ms, options);
}

std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<MarkovModel>& models,
                                              const CkOptions& options) {
  const char* fn = "chapman_kolmogorov_test";
  if (options.max_n < 0) fail(fn, "max_n must be >= 0");
  std::vector<CkModel> ms;
  ms.reserve(models.size());
  for (const MarkovModel& t : models)
    ms.push_back(make_ck_model(t.lag_steps, t.transition_matrix, t.connectivity.kept, fn));
  return ck_run(ms, options);
}

}  // namespace ionmsm
