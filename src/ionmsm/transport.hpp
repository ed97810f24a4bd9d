#pragma once
// Transport from transition counts: per-lag displacement statistics, MSD by propagation
// (paper arXiv:2511.20863, section 2.2.4, eqs. 7-8), the exact long-time diffusion tensor of
// the Markov model, Einstein fits and the jump network.
//
// Conventions
// -----------
//  * Counts: C(i,j) = number of transitions from site j to site i at one lag (summed over
//    lattice shifts). M(i,j) = C(i,j) / sum_k C(k,j) is column-stochastic (paper eq. 5).
//    Internally the diffusion solver also uses the row-stochastic form P = M^T, P(i,j) = the
//    probability to go from i to j.
//  * Site-projected unwrapped displacement of a counts row {from, to, shift}:
//        delta = H (f_to - f_from + shift),   H = box_h (columns = cell vectors),
//    in the length unit of the counts file (units.hpp; Angstrom for LAMMPS metal/real).
//  * Pair moments for the transition j -> i (count-weighted over all shift rows of the pair):
//        <delta>_{j->i}        = sum_s c_s delta_s / sum_s c_s
//        <delta delta^T>_{j->i} = sum_s c_s delta_s delta_s^T / sum_s c_s
//  * Times: every function takes the lag time tau (`lag_time`) in a time unit of the caller's
//    choice (`ionmsm analyze` passes lag_steps * timestep_ps, i.e. ps, or lag_steps for lj
//    units); D is returned in length^2 per that unit, drift in length per that unit. Names
//    carry no unit suffix for that reason.
//
// State space (sites without outgoing counts)
// -------------------------------------------
//  A column of M for a site that never appears as `from` would be all zero, and M would not be
//  stochastic. build_transport_statistics() therefore works on the ACTIVE set: the largest set
//  A of sites such that every site in A has at least one counted transition (a stay counts)
//  into A. It is found by repeatedly removing sites without outgoing counts into the remaining
//  set (normally this removes nothing, or only sites visited in the last lag window of a run).
//  Removed sites are listed in TransportStatistics::excluded_sites; all rows from or into them
//  are dropped (their total is dropped_count) and M is renormalised over A. Every result below
//  is defined on A; per-site outputs carry 0 (or the excluded flag) for removed sites.
//
// Start distribution (MSD and class weights)
// ------------------------------------------
//  By default the MSD starts from the observed site occupancy (atom-samples per site from the
//  counts file) restricted to A and normalised to 1. If the occupancy is empty or zero on A,
//  the fraction of origins per site (outgoing counts into A) is used instead. Alternatives:
//  the limiting distribution of the chain from that start (MsdStart::stationary) or uniform.
//
// One header per topic, included here together:
//   transport_statistics.hpp  per-lag displacement statistics, jump network
//   propagation.hpp           MSD by propagation, Einstein fit
//   diffusion.hpp             exact diffusion tensor

#include "ionmsm/diffusion.hpp"
#include "ionmsm/propagation.hpp"
#include "ionmsm/transport_statistics.hpp"
