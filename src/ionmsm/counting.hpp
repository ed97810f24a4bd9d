#pragma once
// In-situ transition counting with per-atom site histories (docs/theory.md, "Counting").
//
// Time is measured in samples: sample k is taken at timestep k * Nevery. A lag of L timesteps is
// l = L / Nevery samples. For every atom and every sampled origin k with a sample at k + l the
// count C[l](from = s(k), to = s(k+l), shift = n(k+l) - n(k)) is incremented once
// (sliding window, all origins). C_ij in the paper's eq. 4 is the sum over shifts with
// i = to, j = from.
//
// Each atom carries a history record of doubles (so that LAMMPS can migrate and restart it
// unchanged): `max_lag` slots of kFieldsPerSlot values {sample, site, n_x, n_y, n_z}, slot =
// sample mod max_lag. An empty slot has sample = -1. Sample indices and images are integers
// far below 2^53 and are stored exactly.
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "ionmsm/geometry.hpp"

namespace ionmsm {

struct CountKey {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  bool operator<(const CountKey& o) const {
    if (from != o.from) return from < o.from;
    if (to != o.to) return to < o.to;
    return shift < o.shift;
  }
  bool operator==(const CountKey& o) const {
    return from == o.from && to == o.to && shift == o.shift;
  }
};

struct TransitionCount {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  std::uint64_t count = 0;
};

/// Sparse 64-bit counts for one lag, keyed by (from, to, shift). Staying on a site with zero
/// shift (by far the most common event) goes to a dense per-site array.
class CountTable {
 public:
  CountTable() = default;
  explicit CountTable(std::size_t nsites);
  void add(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t n = 1);
  /// Nonzero entries sorted by (from, to, shift).
  std::vector<TransitionCount> rows() const;
  std::uint64_t total() const;
  void clear();
  std::size_t nsites() const { return stay_.size(); }

 private:
  static bool pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key);
  std::vector<std::uint64_t> stay_;
  std::unordered_map<std::uint64_t, std::uint64_t> packed_;
  std::map<CountKey, std::uint64_t> overflow_;
};

class TransitionCounter {
 public:
  static constexpr int kFieldsPerSlot = 5;

  TransitionCounter() = default;
  /// lag_samples: lags in samples, each >= 1, strictly increasing. Throws std::invalid_argument.
  TransitionCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples);

  std::size_t nsites() const { return occupancy_.size(); }
  std::size_t num_lags() const { return lags_.size(); }
  std::int64_t lag_samples(std::size_t i) const { return lags_[i]; }
  const std::vector<std::int64_t>& lags() const { return lags_; }
  std::int64_t max_lag_samples() const { return lags_.empty() ? 0 : lags_.back(); }

  /// Size of one atom's history record in doubles.
  int doubles_per_atom() const { return static_cast<int>(max_lag_samples()) * kFieldsPerSlot; }
  /// Marks every slot of a record empty (new atom, or atom entering the group).
  void clear_history(double* record) const;

  /// Advance the global clock to sample `sample_index` (call on every rank, once per sample,
  /// before add_atom_sample). Throws std::invalid_argument unless sample_index increases.
  void begin_sample(std::int64_t sample_index);
  std::int64_t current_sample() const { return current_; }
  bool has_sample() const { return have_current_; }

  /// Record one atom's site at the current sample: counts every lag whose origin sample is in
  /// the record, then stores the new entry. Throws std::invalid_argument for a site index out of
  /// range.
  void add_atom_sample(double* record, const SiteImage& now);

  const CountTable& table(std::size_t lag_index) const { return tables_[lag_index]; }
  /// Number of sampled time origins k with a sample at k + l (global, identical on every rank).
  std::uint64_t n_origins(std::size_t lag_index) const { return origins_[lag_index]; }
  /// Number of samples taken (global).
  std::uint64_t n_samples() const { return n_samples_; }
  /// Atom-samples per site (local to this counter until reduced).
  const std::vector<std::uint64_t>& occupancy() const { return occupancy_; }

  /// Counts and occupancy as a flat int64 buffer (for MPI reduction and restart files):
  /// [nsites, nrows, occupancy[nsites], then nrows x {lag_index, from, to, sx, sy, sz, count}].
  /// Counts are stored bit-for-bit as uint64 in int64 slots.
  std::vector<std::int64_t> pack_counts() const;
  /// Adds counts from a pack_counts() buffer. Throws std::invalid_argument on a malformed buffer.
  void add_packed_counts(const std::int64_t* data, std::size_t n);
  /// Zeroes counts and occupancy (not the clock).
  void clear_counts();

  /// Clock state (for restart): [current, have_current, n_samples, origins[L], recent ring].
  std::vector<std::int64_t> pack_clock() const;
  void unpack_clock(const std::int64_t* data, std::size_t n);

 private:
  std::vector<std::int64_t> lags_;
  std::vector<CountTable> tables_;
  std::vector<std::uint64_t> origins_;
  std::vector<std::uint64_t> occupancy_;
  std::vector<std::int64_t> recent_;  // ring of sampled indices, slot = k mod max_lag, -1 = none
  std::int64_t current_ = -1;
  bool have_current_ = false;
  std::uint64_t n_samples_ = 0;
};

}  // namespace ionmsm
