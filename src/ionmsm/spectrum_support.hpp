#pragma once
// Internal to spectrum.cpp and spectrum_reversible.cpp: ordering of eigenvalues, option
// checks, Krylov sizes and the Spectra driver shared by the general and the reversible route.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <complex>
#include <numeric>
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

#endif  // IONMSM_HAVE_SPECTRA

}  // namespace ionmsm::detail
