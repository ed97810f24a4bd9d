// The reported spectrum of a Markov model: see leading_spectrum.hpp.
#include "ionmsm/leading_spectrum.hpp"

#include <algorithm>
#include <stdexcept>

namespace ionmsm {

bool exactly_balanced(const MarkovModel& model) {
  try {
    return detailed_balance_violation(model.transition_matrix, model.stationary) <=
           kExactBalanceTolerance;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

Spectrum leading_spectrum(const MarkovModel& model, Estimator estimator, int n_eigenvalues) {
  SpectrumOptions so;
  const auto n = static_cast<std::size_t>(model.transition_matrix.rows());
  // Only the leading K eigenvalues are reported: above kDenseSpectrumMaxSites kept sites
  // (when K is small against n) compute just those by Spectra instead of all n by the
  // O(n^3) dense solver.
  const int k_sparse = std::max(n_eigenvalues, kDefaultSparseEigenvalues);
  const bool sparse = n > so.sparse_threshold ||
                      (n > kDenseSpectrumMaxSites &&
                       static_cast<std::size_t>(4 * static_cast<std::size_t>(k_sparse)) <= n);
  so.method = sparse ? SpectrumMethod::Sparse : SpectrumMethod::Dense;
  // A non-reversible estimate that satisfies detailed balance to round-off (symmetric counts,
  // e.g. an exactly symmetric lattice) has the same spectrum as its symmetrised matrix: take
  // the real symmetric route (Lanczos / sparse LDLT or SelfAdjointEigenSolver), which returns
  // exactly real eigenvalues.
  const bool symmetric_route = estimator == Estimator::Reversible || exactly_balanced(model);
  auto compute = [&](const SpectrumOptions& o) {
    return symmetric_route
               ? compute_reversible_spectrum(model.transition_matrix, model.stationary, o)
               : compute_spectrum(model.transition_matrix, o);
  };
  if (sparse) {
    // First the matrix-vector Arnoldi / Lanczos (no sparse factorisation): SparseMode::Auto
    // accepts it only when its values are provably the ones closest to 1 (the shift-invert
    // ones) and no two coincide (an exact multiplicity is never trusted to a Krylov method:
    // never on an exactly symmetric lattice; real MD counts are never exactly degenerate).
    // Large models ask it for just the k_sparse reported eigenvalues (a Krylov space half the
    // size); small ones for 2 k_sparse, which converges in far fewer restarts there
    // (bench/README.md, "ionmsm analyze").
    SpectrumOptions trial = so;
    trial.num_eigenvalues = n > kSmallTrialMaxSites ? k_sparse : 2 * k_sparse;
    trial.sparse_mode = SparseMode::Auto;
    trial.sparse_auto_fallback = false;
    Spectrum sp = compute(trial);
    if (sp.status == SpectrumStatus::Ok && sp.sparse_mode_used == SparseMode::LargestModulus &&
        sp.eigenvalues.size() >= k_sparse) {
      if (sp.eigenvalues.size() > k_sparse) sp.eigenvalues = sp.eigenvalues.head(k_sparse).eval();
      return sp;
    }
  }
  // Shift-invert. Krylov methods see exactly degenerate eigenvalues (symmetric lattices) only
  // through round-off: compute twice as many as reported so that multiplicities near the cut
  // are complete, then keep the leading k_sparse.
  so.num_eigenvalues = sparse ? 2 * k_sparse : 0;
  Spectrum sp = compute(so);
  if (sparse && sp.eigenvalues.size() > k_sparse)
    sp.eigenvalues = sp.eigenvalues.head(k_sparse).eval();
  return sp;
}

}  // namespace ionmsm
