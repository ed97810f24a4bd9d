#pragma once
// The spectrum of one lag's Markov model as `ionmsm analyze` reports it: at least the leading
// K eigenvalues, with the solver (dense or sparse, general or symmetric) chosen from the model's
// size and whether it satisfies detailed balance. Conventions: msm.hpp.
#include <cstddef>

#include "ionmsm/estimators.hpp"
#include "ionmsm/spectrum.hpp"

namespace ionmsm {

/// Up to this many kept sites every eigenvalue is computed by the dense solver.
inline constexpr std::size_t kDenseSpectrumMaxSites = 300;
/// Up to this many kept sites the matrix-vector trial computes 2 k eigenvalues (fewer
/// restarts), above it k (cheaper orthogonalisation).
inline constexpr std::size_t kSmallTrialMaxSites = 5000;
/// A non-reversible estimate counts as reversible (symmetric route) when its detailed-balance
/// violation relative to the largest flux is at most this (round-off level; the solvers' own
/// residuals are ~1e-10).
inline constexpr double kExactBalanceTolerance = 1e-12;

/// True when the model satisfies detailed balance to round-off (kExactBalanceTolerance). Only a
/// choice of solver depends on it, so a stationary vector that detailed_balance_violation
/// refuses (a round-off zero or negative entry) means "no": the general route handles any model.
bool exactly_balanced(const MarkovModel& model);

/// At least the leading `n_eigenvalues` eigenvalues of the model's transition matrix (all of
/// them for a dense solve, max(n_eigenvalues, kDefaultSparseEigenvalues) for a sparse one).
/// Reversible estimates and exactly balanced ones take the real symmetric route (exactly real
/// eigenvalues, about twice as fast); large models first try a matrix-vector Krylov run that
/// is accepted only when provably equal to the shift-invert result (SparseMode::Auto), else
/// shift-invert.
Spectrum leading_spectrum(const MarkovModel& model, Estimator estimator, int n_eigenvalues);

}  // namespace ionmsm
