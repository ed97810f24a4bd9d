#pragma once
// Markov state models of ion hopping between sites (paper arXiv:2511.20863, sec. 2.1 and
// 2.2.4, eqs. 1-6): count matrices, connectivity, transition-matrix estimators, spectra,
// implied timescales and the Chapman-Kolmogorov test.
//
// CONVENTIONS (fixed project-wide)
//  * Counts: C is n x n with C(i, j) = number of observed transitions FROM site j TO site i in
//    one lag (eq. 4). A LagCounts row {from, to, shift, count} adds `count` to C(to, from);
//    rows that differ only in the lattice shift are summed (the site-level matrix ignores
//    periodic images).
//  * Transition matrix: column-stochastic, M(i, j) = P(j -> i in one lag), sum_i M(i, j) = 1,
//    p(t + tau) = M p(t) (eqs. 1 and 5). The non-reversible MLE is M(i,j) = C(i,j)/sum_k C(k,j).
//  * Stationary distribution: M pi = pi, pi_i > 0, sum_i pi_i = 1. Detailed balance (reversible
//    models): pi_j M(i, j) = pi_i M(j, i).
//  * Eigenvectors: right r (M r = lambda r) are columns of Spectrum::right_vectors; left l
//    (l^T M = lambda l^T, plain transpose, no conjugation) are columns of
//    Spectrum::left_vectors. For a column-stochastic M, r_1 = pi and l_1 = (1, ..., 1).
//  * Site indices: std::size_t, 0-based, always into the ORIGINAL site list (CountsData's
//    sites) unless stated otherwise. After restriction to a connected set, row/column k of a
//    matrix belongs to original site kept[k].
//  * Lags are given in MD timesteps (lag_steps, as in LagCounts). Times are lag_steps times a
//    caller-supplied time per step; implied timescales come out in that same unit (e.g. pass
//    CountsData::timestep_ps to get picoseconds).
//  * Matrices are Eigen::MatrixXd (dense) or Eigen::SparseMatrix<double> (column-major,
//    compressed); every estimator has both overloads and they give the same numbers.
//
// ERRORS: misuse (wrong sizes, negative or non-finite counts, sites out of range, a site with
// no outgoing counts passed to an estimator, a reducible matrix, ...) throws
// std::invalid_argument with a message that says what to do. Numerical non-convergence is NOT
// an exception: it is reported through status enums and message strings.
//
// The numerics live in one header per topic, included here together:
//   connectivity.hpp  count matrices, strongly connected components, largest connected set
//   estimators.hpp    non-reversible and reversible estimators, stationary distribution, MarkovModel
//   spectrum.hpp      eigenvalues and eigenvectors (dense / sparse, general / reversible)
//   timescales.hpp    implied timescales
//   ck.hpp            Chapman-Kolmogorov test

#include "ionmsm/ck.hpp"
#include "ionmsm/connectivity.hpp"
#include "ionmsm/estimators.hpp"
#include "ionmsm/spectrum.hpp"
#include "ionmsm/timescales.hpp"
