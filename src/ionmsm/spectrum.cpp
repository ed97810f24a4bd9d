// Spectra of general (non-reversible) transition matrices: see spectrum.hpp.
#include "ionmsm/spectra.hpp"  // first: see there
#include "ionmsm/spectrum.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/LU>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/spectrum_support.hpp"

namespace ionmsm {

using namespace detail;

namespace {

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

#ifdef IONMSM_HAVE_SPECTRA

using GeneralProd = Spectra::SparseGenMatProd<double>;
using GeneralShift = Spectra::SparseGenRealShiftSolve<double>;
using GeneralRoute = KrylovRoute<Eigen::VectorXcd, Eigen::MatrixXcd, GeneralProd,
                                 Spectra::GenEigsSolver<GeneralProd>, GeneralShift,
                                 Spectra::GenEigsRealShiftSolver<GeneralShift>, 2>;
using GeneralRun = RouteRun<GeneralRoute>;

// The k leading eigenvalues of a general sparse matrix (k <= n - 2) with right vectors if
// requested, through run_krylov on A itself (GenEigsSolver, GenEigsRealShiftSolver).
Spectrum sparse_general_spectrum(const SpMat& m, const SpectrumOptions& options, int k) {
  SpMat a = m;
  a.makeCompressed();
  const Index n = a.rows();
  const int ncv = krylov_size(options, k, 2, n);
  const bool vectors = options.right_vectors;
  const bool trial = options.sparse_mode == SparseMode::Auto && !uniform_columns(a);
  const GeneralRun run = run_krylov<GeneralRoute>(
      a, options, k, ncv, trial, vectors, {"GenEigsSolver", "GenEigsRealShiftSolver"});
  Spectrum out;
  out.method_used = SpectrumMethod::Sparse;
  out.sparse_restarts = run.restarts;
  out.sparse_mode_used = run.mode_used;
  if (run.outcome != KrylovOutcome::Finished || !run.success) {
    out.status = SpectrumStatus::NotConverged;
    out.message = krylov_message(run, k);
    if (run.outcome != KrylovOutcome::Finished) return out;
  }
  const Eigen::VectorXcd& ev = run.values;
  if (ev.size() == 0) return out;
  const std::vector<Index> order = spectral_order(ev, options.tie_tolerance);
  out.eigenvalues.resize(ev.size());
  for (Index i = 0; i < ev.size(); ++i) out.eigenvalues(i) = ev(order[static_cast<std::size_t>(i)]);
  if (vectors) {
    Eigen::MatrixXcd r(n, ev.size());
    for (Index i = 0; i < ev.size(); ++i)
      r.col(i) = run.vectors.col(order[static_cast<std::size_t>(i)]);
    normalise_general_right(r, out.eigenvalues);
    out.right_vectors = std::move(r);
  }
  return out;
}

#endif  // IONMSM_HAVE_SPECTRA

}  // namespace

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
  return sparse_general_spectrum(m, options, k);
#else
  fail(fn, "sparse spectrum requested but ionmsm was built without Spectra");
#endif
}

}  // namespace ionmsm
