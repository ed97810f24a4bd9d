#pragma once
// Count snapshots per block of samples, and the block bootstrap built on them
// (docs/theory.md, "Error bars"; docs/file-format.md, "Blocks").
//
// fix msm with `blocks Nb` splits its counts into blocks of Nb timesteps: block b holds every
// pair (k, k + l) whose LATER sample k + l lies in timesteps [b Nb, (b + 1) Nb), and the
// samples, origins and occupancy of those timesteps. The fix never counts twice: it keeps the
// cumulative totals at the last block boundary and stores the difference when the next block
// starts (BlockRecorder), so the blocks sum exactly to the file's totals.
//
// A bootstrap replicate draws B blocks with replacement from the B blocks and sums their
// counts; `ionmsm analyze` re-estimates timescales and D on every replicate. Pairs are
// attributed to one block only, so blocks much longer than the longest lag are nearly
// independent (the usual requirement of a block bootstrap).
#include <cstdint>
#include <random>
#include <vector>

#include "ionmsm/counts.hpp"

namespace ionmsm {

/// An empty block shaped for nsites sites and nlags lags.
CountBlock empty_block(std::size_t nsites, std::size_t nlags, std::int64_t index = 0);
/// The totals of `data` (occupancy, n_samples, per-lag origins and rows) as one block.
CountBlock totals_block(const CountsData& data);
/// Adds weight * b to `into` (rows merged, kept sorted). Throws std::invalid_argument if the
/// shapes (sites, lags) differ.
void accumulate(CountBlock& into, const CountBlock& b, std::uint64_t weight = 1);
/// a - b (row by row). Throws std::invalid_argument if the shapes differ or any count, origin,
/// sample or occupancy of b exceeds that of a (b is not an earlier state of a).
CountBlock subtract(const CountBlock& a, const CountBlock& b);
/// True if the block has no samples, no origins, no occupancy and no counts.
bool is_empty(const CountBlock& b);

/// Keeps the blocks of a running count (fix msm). Every rank tracks which block is open (the
/// sample clock is global); only the rank that stores the blocks passes data to close().
class BlockRecorder {
 public:
  BlockRecorder() = default;
  /// block_samples >= 1 samples per block. Throws std::invalid_argument otherwise.
  BlockRecorder(std::int64_t block_samples, std::size_t nsites, std::size_t nlags);

  std::int64_t block_samples() const { return block_samples_; }
  std::int64_t block_of(std::int64_t sample) const { return sample / block_samples_; }
  /// The open block (-1: none yet).
  std::int64_t open_block() const { return open_; }
  /// True if `sample` lies in a block other than the open one (close the open one first).
  bool starts_new_block(std::int64_t sample) const {
    return open_ >= 0 && block_of(sample) != open_;
  }
  /// Opens the block of `sample` unless one is open.
  void open(std::int64_t sample);
  /// Closes the open block; `cumulative` (the totals now) minus the totals at the previous
  /// close is stored as its contents (added to the last stored block if that has the same
  /// index). Throws std::invalid_argument if no block is open or the totals decreased.
  void close(const CountBlock& cumulative);
  /// Closes the open block without data (ranks that do not store blocks).
  void close_without_data() { open_ = -1; }
  /// Stored blocks, then the open block's contents so far (cumulative minus the totals at the
  /// last close) unless that is empty.
  std::vector<CountBlock> blocks(const CountBlock& cumulative) const;
  /// Counts appended from an earlier file: its blocks come first and its totals are the base
  /// of the first block of this run. Throws std::invalid_argument on a shape mismatch.
  void set_base(const std::vector<CountBlock>& earlier, const CountBlock& earlier_totals);
  /// Forgets stored blocks and totals (keeps the shape and the open block).
  void clear_data();

  /// State as int64 (restart files): shape, open block, base totals, stored blocks.
  std::vector<std::int64_t> pack() const;
  /// Restores pack(). Throws std::invalid_argument on a malformed buffer or another shape.
  void unpack(const std::int64_t* data, std::size_t n);

 private:
  std::int64_t block_samples_ = 0;
  std::size_t nsites_ = 0, nlags_ = 0;
  std::int64_t open_ = -1;
  CountBlock base_;                 // cumulative totals at the last close (or the appended file)
  std::vector<CountBlock> stored_;  // closed blocks (and appended ones)
};

/// One bootstrap replicate: multiplicities of nblocks blocks drawn with replacement
/// (they sum to nblocks).
std::vector<std::uint64_t> bootstrap_weights(std::size_t nblocks, std::mt19937_64& rng);
/// The counts of lag `lag` summed over blocks with multiplicities `weights`, as LagCounts with
/// the given lag_steps (rows sorted, no displacement sums).
LagCounts weighted_lag_counts(const std::vector<CountBlock>& blocks,
                              const std::vector<std::uint64_t>& weights, std::size_t lag,
                              std::int64_t lag_steps);
/// Occupancy summed over blocks with multiplicities `weights`.
std::vector<std::uint64_t> weighted_occupancy(const std::vector<CountBlock>& blocks,
                                              const std::vector<std::uint64_t>& weights);

/// Summary of bootstrap values: mean, standard deviation (n - 1), and the percentile interval
/// [low, high] of the given coverage (linear interpolation between order statistics), over the
/// finite values only; n = number of finite values (the others are counted in n_undefined).
struct BootstrapSummary {
  double mean = 0.0, std = 0.0, low = 0.0, high = 0.0;
  std::size_t n = 0, n_undefined = 0;
};
/// Throws std::invalid_argument unless 0 < coverage < 1. With n == 0 every statistic is NaN.
BootstrapSummary summarize_bootstrap(const std::vector<double>& values, double coverage = 0.95);

}  // namespace ionmsm
