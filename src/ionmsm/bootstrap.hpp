#pragma once
// The block bootstrap of `ionmsm analyze` (docs/theory.md, "Error bars"): each replicate draws
// the counts file's blocks with replacement (blocks.hpp) and gives every lag's slowest implied
// timescales and exact diffusion tensor for those multiplicities, either linearised in the
// block weights (the default) or re-estimated on the resampled counts.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/estimators.hpp"

namespace ionmsm {

enum class BootstrapStatus {
  Ok,            ///< replicates computed
  Insufficient,  ///< fewer than 2 blocks
  Absent,        ///< the counts file has no blocks
  Off,           ///< zero replicates asked for
};
const char* bootstrap_status_name(BootstrapStatus status);  ///< "ok", "insufficient", ...

/// Slowest relaxation timescales (eigenvalues 2 .. K+1) bootstrapped per lag (at most).
inline constexpr int kBootstrapTimescales = 5;
/// Fewer blocks than this: the error bars are flagged as themselves uncertain.
inline constexpr std::size_t kMinBootstrapBlocks = 10;
/// The transport quantities bootstrapped per lag, after the K timescales, in this order.
inline constexpr const char* kBootstrapTransport[] = {"D_xx", "D_yy", "D_zz", "D_total",
                                                      "f_trace"};
inline constexpr std::size_t kBootstrapTransportCount = std::size(kBootstrapTransport);
/// Index of D_total among kBootstrapTransport.
inline constexpr std::size_t kBootstrapDTotal = 3;

/// A block with fewer samples than this fraction of the largest block's is partial (e.g. the
/// final block of one sample when the run length is a multiple of Nb): it is merged into a
/// neighbour before resampling, so that it is never drawn as if it were a full block.
inline constexpr double kPartialBlockFraction = 0.5;

/// The blocks to resample: every partial block summed into its predecessor (the first block,
/// when partial, into its successor); counts, origins, occupancy and samples add up, the merged
/// block keeps the first index. n_merged: how many partial blocks were merged.
std::vector<CountBlock> merge_partial_blocks(const std::vector<CountBlock>& blocks,
                                             std::size_t& n_merged);

/// How a replicate's values follow from its block multiplicities w_b (sum w_b = B).
enum class BootstrapMethod {
  /// theta* = theta + c sqrt(B / (B - 1)) sum_b (w_b - 1) g_b with g_b = d theta / d w_b at
  /// w = 1 (forward difference) and c = student_t_widening: the count support of the point
  /// estimate is kept, so no replicate loses a hop path; the variance before c is the unbiased
  /// block estimate, c makes the percentile interval the Student-t interval.
  Linearized,
  /// theta* = theta(sum_b w_b C_b): the classical block bootstrap (a replicate without the
  /// blocks that hold a rare hop loses that path; the variance is biased by (B - 1) / B).
  Resample,
};
const char* bootstrap_method_name(BootstrapMethod method);  ///< "linearized", "resample"

/// Linearized: a quantity that is not linear in the block weights on the scale of its error,
/// i.e. for some block b |theta(1 - e_b) - (theta - g_b)| (the leave-one-block-out estimate
/// against its linear prediction) exceeds this many sd of the replicates, is resampled
/// instead (Resample) at that lag, and the result's message says so.
inline constexpr double kMaxBootstrapNonlinearity = 0.5;

struct BootstrapOptions {
  std::int64_t n_replicates = 100;
  std::uint64_t seed = 1;              ///< the result depends on the seed only
  Estimator estimator = Estimator::NonReversible;
  int n_eigenvalues = 20;              ///< K = clamp(n_eigenvalues - 1, 1, kBootstrapTimescales)
  bool within_components = true;       ///< transport counts inside strongly connected components
  double time_per_step = 1.0;          ///< lag time = lag_steps * time_per_step
  BootstrapMethod method = BootstrapMethod::Linearized;
  /// Linearized: the coverage of the percentile interval the replicates are scaled for (the
  /// Student-t factor of student_t_widening); the CLI's intervals are 95 %.
  double interval_coverage = 0.95;
};

/// t_{B-1} / z: the quantile (1 + coverage) / 2 of Student's t with B - 1 degrees of freedom
/// over that of the standard normal (2.262 / 1.960 = 1.154 for B = 10, 1.068 for B = 20). The
/// linearised replicates are normal with the block standard error s; scaled by this factor,
/// their percentile interval is the t interval estimate +- t_{B-1} s, which covers the true
/// value with the stated probability when s itself comes from only B blocks. Throws
/// std::invalid_argument unless n_blocks >= 2 and 0 < coverage < 1.
double student_t_widening(std::size_t n_blocks, double coverage);

/// Bootstrap values of one lag: values[q][r] for quantity q and replicate r (NaN: undefined).
/// Quantities: the K slowest relaxation timescales, then kBootstrapTransport.
struct BootstrapLag {
  std::size_t index = 0;  ///< into CountsData::lags
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  std::vector<std::vector<double>> values;
  /// Resample if any quantity's values were resampled (see `resampled`), else the options'.
  BootstrapMethod method = BootstrapMethod::Linearized;
  /// Linearized: per quantity, the largest leave-one-block-out deviation from the linear
  /// prediction in sd of the replicates (+inf where a leave-one-out estimate is undefined, 0
  /// where the quantity is undefined); all 0 with BootstrapOptions::method Resample.
  std::vector<double> quantity_nonlinearity;
  double nonlinearity = 0.0;     ///< the largest of quantity_nonlinearity
  std::vector<bool> resampled;   ///< per quantity: above kMaxBootstrapNonlinearity, resampled
};

/// The name of bootstrapped quantity q with K timescales: "t2_ps" ... for q < K (mode q + 2, as
/// in bootstrap.csv), then kBootstrapTransport[q - K].
std::string bootstrap_quantity_name(std::size_t q, int K);

struct BootstrapResult {
  BootstrapStatus status = BootstrapStatus::Off;
  std::string message;  ///< why not ok, or a caveat when ok (few blocks, merged partial blocks)
  std::size_t n_blocks = 0;         ///< blocks resampled (after merging partial ones)
  std::size_t n_merged_blocks = 0;  ///< partial blocks merged into a neighbour
  std::int64_t n_replicates = 0;
  int n_timescales = 0;  ///< K
  std::vector<BootstrapLag> lags;  ///< every lag with counts
  BootstrapMethod method = BootstrapMethod::Linearized;
};

/// The block bootstrap of `data` (status Absent without blocks, Off for 0 replicates,
/// Insufficient for fewer than 2 blocks after merge_partial_blocks; the message says how many
/// partial blocks were merged). The replicates' block multiplicities are drawn in
/// order from one generator seeded with `seed`, so the result never depends on the thread
/// scheduling. A replicate whose estimate fails leaves NaN.
BootstrapResult run_bootstrap(const CountsData& data, const BootstrapOptions& options);

/// The bootstrapped quantities (K timescales, then kBootstrapTransport) of the file's totals at
/// data.lags[lag_index], computed exactly as a replicate's (NaN where undefined). Throws
/// std::invalid_argument for a lag index out of range.
std::vector<double> bootstrap_point_estimates(const CountsData& data, std::size_t lag_index,
                                              const BootstrapOptions& options);

}  // namespace ionmsm
