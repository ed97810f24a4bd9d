#pragma once
// The Markov model file `analysis/model.h5` of `ionmsm analyze` (HDF5; layout and version
// history: docs/model-file.md): per lag the kept sites, the column-stochastic transition matrix
// (CSC), the stationary distribution, leading eigenvalues with left and right eigenvectors and
// the diffusion tensor; for the selected lag the hop rate matrix. Conventions: msm.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/estimators.hpp"
#include "ionmsm/spectrum.hpp"

namespace ionmsm {

/// Root attributes "format" and "format_version" of the model file.
inline constexpr const char* kModelFormatTag = "ionmsm-model";
inline constexpr int kModelFormatVersion = 1;
/// Above this many kept sites a non-reversible model's eigenvectors come from the sparse solver,
/// which gives right vectors only (the file then has no left vectors for that lag).
inline constexpr std::size_t kModelDenseVectorsMaxSites = 2000;

/// One lag's model as stored.
struct ModelLag {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;                          ///< lag_steps * time per step
  std::vector<std::int64_t> kept_sites;           ///< file site index of each state
  Eigen::SparseMatrix<double> transition_matrix;  ///< states x states, column-stochastic
  Eigen::VectorXd stationary;                     ///< pi on the states
  Eigen::VectorXcd eigenvalues;                   ///< leading, sorted as in Spectrum
  Eigen::MatrixXcd right_vectors;                 ///< states x K (columns), l_k^T r_k = 1
  Eigen::MatrixXcd left_vectors;                  ///< states x K, or empty (see above)
  bool has_diffusion = false;
  Eigen::Matrix3d D_tensor = Eigen::Matrix3d::Zero();  ///< exact D of this lag's counts
};

struct ModelData {
  std::string source;  ///< the counts file
  Estimator estimator = Estimator::NonReversible;
  std::string length_unit, time_unit;
  std::int64_t nsites = 0;  ///< sites in the counts file
  std::vector<ModelLag> lags;
  std::int64_t selected_lag_steps = 0;  ///< 0: no selected lag (then no hop rates)
  /// Hop rates of the selected lag on its states: k(i, j) = T(i, j) / tau for i != j, rate of
  /// hops j -> i; no diagonal (the generator's diagonal is minus the column sums).
  Eigen::SparseMatrix<double> hop_rates;
};

/// k(i, j) = T(i, j) / lag_time for i != j, the diagonal left out. lag_time must be finite and
/// > 0 and T square (std::invalid_argument).
Eigen::SparseMatrix<double> hop_rate_matrix(const Eigen::SparseMatrix<double>& transition_matrix,
                                            double lag_time);

/// The leading n_vectors eigenvalues of the model with right and left eigenvectors (the
/// symmetric route for reversible or exactly balanced models; dense up to
/// kModelDenseVectorsMaxSites states, above it right vectors only for non-reversible models).
Spectrum model_eigenvectors(const MarkovModel& model, Estimator estimator, int n_vectors);

/// Writes the file atomically (temporary file + rename); std::runtime_error naming the path on
/// failure, std::invalid_argument for inconsistent data (sizes, a selected lag not in lags).
void write_model_file(const std::string& path, const ModelData& model);
/// Reads a file written by write_model_file; refuses a missing or wrong tag and an unknown
/// version (std::runtime_error naming the file).
ModelData read_model_file(const std::string& path);

}  // namespace ionmsm
