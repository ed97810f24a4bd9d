// Spectra of reversible transition matrices through their symmetrisation, and the
// detailed-balance check: see spectrum.hpp.
#include "ionmsm/spectra.hpp"  // first: see there
#include "ionmsm/spectrum.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SparseCholesky>
#include <algorithm>
#include <cmath>
#include <complex>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/spectrum_support.hpp"

namespace ionmsm {

using namespace detail;

namespace {

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

#endif  // IONMSM_HAVE_SPECTRA

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

/// The checks both overloads of compute_reversible_spectrum start with; returns the checked
/// stationary vector.
template <class Matrix>
Eigen::VectorXd reversible_input(const Matrix& m, const Eigen::VectorXd& stationary,
                                 const SpectrumOptions& options, const char* fn) {
  validate_spectrum_options(options, fn);
  check_transition_matrix(m, fn, "empty matrix");
  return checked_stationary(stationary, m.rows(), fn);
}

#ifdef IONMSM_HAVE_SPECTRA

using SymmetricProd = Spectra::SparseSymMatProd<double>;
using SymmetricRoute = KrylovRoute<Eigen::VectorXd, Eigen::MatrixXd, SymmetricProd,
                                   Spectra::SymEigsSolver<SymmetricProd>, SymShiftInvertOp,
                                   Spectra::SymEigsShiftSolver<SymShiftInvertOp>, 1>;
using SymmetricRun = RouteRun<SymmetricRoute>;

// The k leading eigenvalues of a reversible sparse M (k <= n - 1) through run_krylov on its
// symmetrisation S = D^{-1/2} M D^{1/2}, D = diag(pi), made exactly symmetric as (S + S^T)/2
// (SymEigsSolver, SymEigsShiftSolver with SymShiftInvertOp); finish_symmetric maps S's
// eigenvectors u back: right r = D^{1/2} u, left l = D^{-1/2} u.
Spectrum sparse_reversible_spectrum(const SpMat& m, const Eigen::VectorXd& pi,
                                    const SpectrumOptions& options, int k, const char* fn) {
  double max_violation = 0.0, max_flux = 0.0;
  flux_balance(m, pi, max_violation, max_flux);
  check_detailed_balance(max_violation, max_flux, options.detailed_balance_tolerance, fn);
  const Index n = m.rows();
  const Eigen::VectorXd sq = pi.cwiseSqrt();
  const SpMat half = sq.cwiseInverse().asDiagonal() * m * sq.asDiagonal();
  SpMat s = 0.5 * (half + SpMat(half.transpose()));
  s.makeCompressed();
  const int ncv = krylov_size(options, k, 1, n);
  const bool vectors = options.right_vectors || options.left_vectors;
  const bool trial = options.sparse_mode == SparseMode::Auto && !uniform_columns(m);
  const SymmetricRun run = run_krylov<SymmetricRoute>(
      s, options, k, ncv, trial, vectors, {"SymEigsSolver", "SymEigsShiftSolver"});
  Spectrum out;
  if (run.outcome == KrylovOutcome::Finished && run.values.size() > 0)
    out = finish_symmetric(run.values, vectors ? &run.vectors : nullptr, sq, options,
                           static_cast<int>(run.values.size()));
  out.symmetrized = true;
  out.method_used = SpectrumMethod::Sparse;
  if (run.outcome == KrylovOutcome::Finished) out.sparse_restarts = run.restarts;
  out.sparse_mode_used = run.outcome == KrylovOutcome::Finished ? run.mode_used
                                                                : SparseMode::ShiftInvert;
  if (run.outcome != KrylovOutcome::Finished || !run.success) {
    out.status = SpectrumStatus::NotConverged;
    out.message = krylov_message(run, k);
  }
  return out;
}

#endif  // IONMSM_HAVE_SPECTRA

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
  const Eigen::VectorXd pi = reversible_input(m, stationary, options, fn);
  const Index n = m.rows();
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
  const Eigen::VectorXd pi = reversible_input(m, stationary, options, fn);
  const Index n = m.rows();
  const SpectrumMethod method = choose_method(options, n);
  const int k = requested_k(options, n, method == SpectrumMethod::Sparse);
  if (method == SpectrumMethod::Dense || k > n - 1) {  // Spectra needs k <= n - 1
    SpectrumOptions o = options;
    o.method = SpectrumMethod::Dense;
    o.num_eigenvalues = k;
    return compute_reversible_spectrum(Eigen::MatrixXd(m), pi, o);
  }
#ifdef IONMSM_HAVE_SPECTRA
  return sparse_reversible_spectrum(m, pi, options, k, fn);
#else
  fail(fn, "sparse spectrum requested but ionmsm was built without Spectra");
#endif
}

}  // namespace ionmsm
