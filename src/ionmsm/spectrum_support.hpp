#pragma once
// Internal to spectrum.cpp and spectrum_reversible.cpp: ordering of eigenvalues, option
// checks, Krylov sizes and the Spectra driver (run_krylov) shared by the general and the
// reversible route.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <complex>
#include <exception>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/msm_checks.hpp"
#include "ionmsm/spectrum.hpp"

#ifdef IONMSM_HAVE_SPECTRA
#include <Spectra/Util/CompInfo.h>
#include <Spectra/Util/SelectionRule.h>
#endif

namespace ionmsm::detail {

// Decreasing modulus; moduli within tie_tol of the first of a group are ordered by decreasing
// real part, then decreasing imaginary part.
inline std::vector<Index> spectral_order(const Eigen::VectorXcd& ev, double tie_tol) {
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
inline void normalise_general_right(Eigen::MatrixXcd& r, const Eigen::VectorXcd& sorted_ev) {
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

inline void validate_spectrum_options(const SpectrumOptions& o, const char* function) {
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

inline SpectrumMethod choose_method(const SpectrumOptions& o, Index n) {
  SpectrumMethod m = o.method;
  if (m == SpectrumMethod::Auto)
    m = static_cast<std::size_t>(n) > o.sparse_threshold ? SpectrumMethod::Sparse
                                                          : SpectrumMethod::Dense;
#ifndef IONMSM_HAVE_SPECTRA
  m = SpectrumMethod::Dense;
#endif
  return m;
}

inline int requested_k(const SpectrumOptions& o, Index n, bool sparse) {
  if (o.num_eigenvalues > 0) return static_cast<int>(std::min<Index>(o.num_eigenvalues, n));
  return sparse ? static_cast<int>(std::min<Index>(kDefaultSparseEigenvalues, n))
                : static_cast<int>(n);
}

inline int krylov_size(const SpectrumOptions& o, int k, int min_extra, Index n) {
  Index ncv = o.sparse_ncv > 0 ? std::max<Index>(o.sparse_ncv, k + min_extra)
                               : std::max<Index>(2 * k + 1, 20);
  return static_cast<int>(std::min<Index>(ncv, n));
}

#ifdef IONMSM_HAVE_SPECTRA

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
inline bool closest_to_shift(const Eigen::VectorXcd& ev, Index k, double sigma, double tol,
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
inline int auto_trial_k(int k, int ncv, Index n, int min_gap) {
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
inline bool uniform_columns(const SpMat& m) {
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

// How the sparse Krylov driver (run_krylov) ended.
enum class KrylovOutcome {
  Finished,       // a solver ran to its end (converged or not: see KrylovRun::success)
  TrialRejected,  // SparseMode::Auto trial rejected and no shift-invert fallback requested
  Failed          // a solver threw (KrylovRun::error)
};

// What run_krylov found: the eigenvalues (unsorted) and, when requested, their eigenvectors as
// columns; real for the symmetrised reversible route, complex for the general one.
template <typename Values, typename Vectors>
struct KrylovRun {
  Values values;
  Vectors vectors;
  Index nconv = 0;     // converged eigenvalues of the last solver
  bool success = false;
  int restarts = 0;    // restarts of the last solver
  const char* solver = "";
  SparseMode mode_used = SparseMode::ShiftInvert;
  KrylovOutcome outcome = KrylovOutcome::Finished;
  std::string error;
};

// Runs the Spectra solver `Solver` on the operator Op(matrix) (built here: a shift-invert
// operator factorises on construction, which may throw) with the solver's arguments `args`
// (nev, ncv[, sigma]): init + compute + collect into `run`; eigenvalue / vector types follow
// the solver (real or complex).
template <typename Op, typename Solver, typename Matrix, typename Values, typename Vectors,
          typename... Args>
void run_solver(const char* name, const Matrix& matrix, const SpectrumOptions& o, bool vectors,
                KrylovRun<Values, Vectors>& run, Args... args) {
  run.solver = name;
  Op op(matrix);
  Solver eigs(op, args...);
  eigs.init();
  run.nconv = eigs.compute(Spectra::SortRule::LargestMagn, o.sparse_max_restarts,
                           o.sparse_tolerance, Spectra::SortRule::LargestMagn);
  run.success = eigs.info() == Spectra::CompInfo::Successful;
  run.restarts = static_cast<int>(eigs.num_iterations());
  if (run.nconv > 0) {
    run.values = eigs.eigenvalues();
    if (vectors) run.vectors = eigs.eigenvectors();
  }
}

// Keeps the k trial eigenpairs at positions `chosen` (see closest_to_shift).
template <typename Values, typename Vectors>
void keep_chosen(KrylovRun<Values, Vectors>& run, const std::vector<Index>& chosen, int k,
                 bool vectors, Index n) {
  Values values_k(k);
  Vectors vectors_k(vectors ? n : 0, vectors ? k : 0);
  for (Index i = 0; i < k; ++i) {
    values_k(i) = run.values(chosen[static_cast<std::size_t>(i)]);
    if (vectors) vectors_k.col(i) = run.vectors.col(chosen[static_cast<std::size_t>(i)]);
  }
  run.values = std::move(values_k);
  run.vectors = std::move(vectors_k);
  run.nconv = k;
}

// A route through run_krylov: Values / Vectors (real for the symmetrised reversible matrix,
// complex for a general one), the matrix-product operator Prod with its largest-modulus solver
// Largest, the shift-invert operator Shift with its solver ShiftInvert, and Spectra's limit
// k <= n - kMinGap.
template <typename ValuesT, typename VectorsT, typename ProdT, typename LargestT,
          typename ShiftT, typename ShiftInvertT, int kMinGapV>
struct KrylovRoute {
  using Values = ValuesT;
  using Vectors = VectorsT;
  using Prod = ProdT;
  using Largest = LargestT;
  using Shift = ShiftT;
  using ShiftInvert = ShiftInvertT;
  static constexpr int kMinGap = kMinGapV;
};

template <typename Route>
using RouteRun = KrylovRun<typename Route::Values, typename Route::Vectors>;

// The solver names of a route, for messages.
struct KrylovNames {
  const char* largest;
  const char* shift_invert;
};

// The largest-modulus step: kt eigenpairs of largest modulus. Without a trial
// (SparseMode::LargestModulus) kt = k and its result is final. As the Auto trial, kt is a few
// more than k (auto_trial_k) with at most sparse_auto_restarts restarts, and the result is
// accepted (true) only when closest_to_shift proves k of them are those shift-invert at
// sigma = 1 + sparse_shift would return; a throwing trial is rejected.
template <typename Route>
bool largest_modulus_step(RouteRun<Route>& run, const SpMat& a, const SpectrumOptions& options,
                          int k, int ncv, bool trial, bool vectors, const char* name) {
  SpectrumOptions o = options;
  if (trial) o.sparse_max_restarts = std::min(o.sparse_max_restarts, o.sparse_auto_restarts);
  const int kt = trial ? auto_trial_k(k, ncv, a.rows(), Route::kMinGap) : k;
  try {
    run_solver<typename Route::Prod, typename Route::Largest>(name, a, o, vectors, run, kt, ncv);
  } catch (const std::exception&) {
    if (!trial) throw;
    run.success = false;  // a failed trial only means: shift-invert
  }
  run.mode_used = SparseMode::LargestModulus;
  if (!trial) return true;
  std::vector<Index> chosen;
  if (!(run.success && run.nconv == kt &&
        closest_to_shift(Eigen::VectorXcd(run.values.template cast<std::complex<double>>()), k,
                         1.0 + options.sparse_shift, options.tie_tolerance, chosen)))
    return false;
  keep_chosen(run, chosen, k, vectors, a.rows());
  return true;
}

// The sparse Krylov driver of compute_spectrum and compute_reversible_spectrum on the matrix
// a: the largest-modulus step (SparseMode::LargestModulus, or the Auto trial when `trial`),
// then, unless it was final, shift-invert: the k eigenvalues closest to
// sigma = 1 + sparse_shift, i.e. the largest of 1 / (lambda - sigma).
template <typename Route>
RouteRun<Route> run_krylov(const SpMat& a, const SpectrumOptions& options, int k, int ncv,
                           bool trial, bool vectors, KrylovNames names) {
  RouteRun<Route> run;
  try {
    bool done = false;
    if (options.sparse_mode == SparseMode::LargestModulus || trial)
      done = largest_modulus_step<Route>(run, a, options, k, ncv, trial, vectors, names.largest);
    if (!done && options.sparse_mode == SparseMode::Auto && !options.sparse_auto_fallback) {
      run.mode_used = SparseMode::ShiftInvert;
      run.outcome = KrylovOutcome::TrialRejected;
      return run;
    }
    if (!done) {
      run.values.resize(0);
      run.vectors.resize(0, 0);
      run.nconv = 0;
      run.success = false;
      run_solver<typename Route::Shift, typename Route::ShiftInvert>(
          names.shift_invert, a, options, vectors, run, k, ncv, 1.0 + options.sparse_shift);
      run.mode_used = SparseMode::ShiftInvert;
    }
  } catch (const std::exception& e) {
    run.outcome = KrylovOutcome::Failed;
    run.error = e.what();
  }
  return run;
}

// Spectrum::message of a failed or not converged run_krylov.
template <typename Values, typename Vectors>
std::string krylov_message(const KrylovRun<Values, Vectors>& run, int k) {
  if (run.outcome == KrylovOutcome::TrialRejected)
    return "Auto trial rejected (no shift-invert fallback requested)";
  if (run.outcome == KrylovOutcome::Failed)
    return std::string("Spectra ") + run.solver + " failed: " + run.error;
  return std::string("Spectra ") + run.solver + ": " + std::to_string(run.nconv) + " of " +
         std::to_string(k) + " eigenvalues converged after " + std::to_string(run.restarts) +
         " restarts; raise sparse_max_restarts or sparse_ncv, or use the dense method";
}

#endif  // IONMSM_HAVE_SPECTRA

}  // namespace ionmsm::detail
