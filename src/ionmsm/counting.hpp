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
// unchanged). TransitionCounter holds one of two history schemes (HistoryConfig), each with its
// own record layout: FullHistoryCounter (counting_full.hpp, the default: every sample pair,
// event-driven) and MultiTauCounter (counting_multitau.hpp: bounded memory). Both share the
// count tables, the clock and the moments (HistoryCounter, counting_history.hpp).
//
// Optionally (set_site_fractional), every counted pair with from != to or a nonzero shift also
// adds its site-projected displacement delta = H (f_to - f_from + shift), with H the cell set by
// set_cell() for the later sample, to per-lag first and second moments.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "ionmsm/counting_config.hpp"
#include "ionmsm/counting_history.hpp"
#include "ionmsm/counting_table.hpp"
#include "ionmsm/counts.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

class TransitionCounter {
 public:
  /// lag_samples: lags in samples, each >= 1, strictly increasing. Throws std::invalid_argument
  /// (also, in multitau mode, for a lag no level represents, naming its nearest neighbours).
  TransitionCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples,
                    HistoryConfig history = HistoryConfig::full());
  TransitionCounter(const TransitionCounter& o);
  TransitionCounter& operator=(const TransitionCounter& o);
  TransitionCounter(TransitionCounter&&) noexcept = default;
  TransitionCounter& operator=(TransitionCounter&&) noexcept = default;

  HistoryConfig history() const { return impl_->history(); }
  /// Level of lag i (0 in full mode): its origins are the sampled multiples of 2^level.
  int lag_level(std::size_t i) const { return impl_->lag_level(i); }
  /// Multitau: the stored levels, ascending (empty in full mode).
  const std::vector<int>& stored_levels() const { return impl_->stored_levels(); }
  /// The radix R of the packed image offsets (offsets must lie in [-R/2, R - 1 - R/2]); in
  /// full mode a power of two.
  std::int64_t image_radix() const { return impl_->image_radix(); }

  /// Enables the displacement moments (fractional site coordinates, one per site; throws
  /// std::invalid_argument on a size mismatch or a non-finite value).
  void set_site_fractional(const std::vector<Eigen::Vector3d>& frac) {
    impl_->set_site_fractional(frac);
  }
  bool has_moments() const { return impl_->has_moments(); }
  /// The cell H (columns = cell vectors) of the current sample, for the displacements (call
  /// after begin_sample, before the sample's atoms).
  void set_cell(const Eigen::Matrix3d& h) { impl_->set_cell(h); }
  /// Sum over counted pairs of delta (3) and of delta delta^T (3x3) for lag i.
  const Eigen::Vector3d& displacement_sum(std::size_t i) const {
    settle();
    return impl_->displacement_sum_unsettled(i);
  }
  const Eigen::Matrix3d& displacement_sq_sum(std::size_t i) const {
    settle();
    return impl_->displacement_sq_sum_unsettled(i);
  }
  /// Moments as a flat buffer of 12 doubles per lag (sum x,y,z then the 3x3 row-major).
  std::vector<double> pack_moments() const { return impl_->pack_moments(); }
  /// Adds a pack_moments() buffer. Throws std::invalid_argument on a size mismatch.
  void add_packed_moments(const double* data, std::size_t n) {
    impl_->add_packed_moments(data, n);
  }
  /// Adds samples and origins taken elsewhere (counts appended from an earlier run): changes
  /// n_samples() and n_origins() only, never the clock. Throws on a size mismatch.
  void add_totals(std::uint64_t n_samples, const std::vector<std::uint64_t>& origins) {
    impl_->add_totals(n_samples, origins);
  }

  std::size_t nsites() const { return impl_->nsites(); }
  std::size_t num_lags() const { return impl_->lags().size(); }
  std::int64_t lag_samples(std::size_t i) const { return impl_->lags()[i]; }
  const std::vector<std::int64_t>& lags() const { return impl_->lags(); }
  std::int64_t max_lag_samples() const { return impl_->max_lag_samples(); }

  /// Size of one atom's history record in doubles.
  int doubles_per_atom() const { return impl_->doubles_per_atom(); }
  /// Marks every slot of a record empty (a new atom). Full mode: a record that is being
  /// recorded (its atom was sampled and not dropped since) must be dropped first.
  void clear_history(double* record) const { impl_->clear_history(record); }
  /// Full mode: the atom is not recorded from now on (left the group, deleted): after its last
  /// recorded sample, its pairs stop. No-op for a record not being recorded, and in multitau
  /// mode (which detects missed samples by itself). Throws std::invalid_argument for a corrupt
  /// record or one that missed samples without being dropped.
  void drop_atom(double* record) { impl_->drop_atom(record); }
  /// Full mode, for a counter whose atoms changed outside the sampling (restart, atoms
  /// deleted or created between runs): integrates what was counted so far, forgets every rate,
  /// then restore_atom() is called for each atom present to restore its pairs.
  void reset_rates() { impl_->reset_rates(); }
  void restore_atom(const double* record) { impl_->restore_atom(record); }
  /// Quiet samples (full mode). An atom whose site image did not change since its last
  /// add_atom_sample call need not be passed again before the sample quiet_until(record), as
  /// long as quiet_allowed() holds at each skipped sample and it is not skipped while it misses
  /// a sample: its pairs are rates that run on without it. Before anything else reads or
  /// copies the record (add_atom_sample, drop_atom, restore_atom, a migration or restart
  /// file), mark_quiet() writes the last skipped sample into it; the record is then exactly
  /// what calling add_atom_sample at every sample would have left. fix msm uses this to leave
  /// an atom's record untouched while it stays on its site (docs/theory.md, "Quiet samples").
  /// The first sample at which this atom must be passed to add_atom_sample again even with an
  /// unchanged site image (call right after add_atom_sample); -1 if it may not skip any
  /// (multitau mode, an atom not being recorded).
  std::int64_t quiet_until(const double* record) const { return impl_->quiet_until(record); }
  /// Whether atoms may skip the current sample (full mode, after begin_sample, and no sampling
  /// gap within the last max_lag samples).
  bool quiet_allowed() const { return impl_->quiet_allowed(); }
  /// The atom, unchanged since its last add_atom_sample call, was recorded at every sample
  /// through `last_sample` (a sample already begun) without being passed: updates the record.
  /// Throws std::invalid_argument in multitau mode, for a record that is not being recorded,
  /// and for a last_sample before the record's last sample, after the current sample or at or
  /// after quiet_until(record).
  void mark_quiet(double* record, std::int64_t last_sample) const {
    impl_->mark_quiet(record, last_sample);
  }
  /// Integrates every open rate into the count tables, occupancy and moments (the accessors
  /// do this themselves).
  void settle() const { impl_->settle(); }

  /// Advance the global clock to sample `sample_index` (call on every rank, once per sample,
  /// before add_atom_sample). Throws std::invalid_argument unless sample_index increases.
  void begin_sample(std::int64_t sample_index) { impl_->begin_sample(sample_index); }
  std::int64_t current_sample() const { return impl_->current_sample(); }
  bool has_sample() const { return impl_->has_sample(); }

  /// Record one atom's site at the current sample: counts every lag whose origin sample is in
  /// the record, then stores the new entry. Throws std::invalid_argument for a site index out of
  /// range.
  void add_atom_sample(double* record, const SiteImage& now) {
    impl_->add_atom_sample(record, now);
  }

  const CountTable& table(std::size_t lag_index) const {
    settle();
    return impl_->table_unsettled(lag_index);
  }
  /// Number of sampled time origins k with a sample at k + l (global, identical on every rank).
  std::uint64_t n_origins(std::size_t lag_index) const { return impl_->n_origins(lag_index); }
  /// Number of samples taken (global).
  std::uint64_t n_samples() const { return impl_->n_samples(); }
  /// Atom-samples per site (local to this counter until reduced).
  const std::vector<std::uint64_t>& occupancy() const {
    settle();
    return impl_->occupancy_unsettled();
  }

  /// Counts and occupancy as a flat int64 buffer (for MPI reduction and restart files):
  /// [nsites, nrows, occupancy[nsites], then nrows x {lag_index, from, to, sx, sy, sz, count}].
  /// Counts are stored bit-for-bit as uint64 in int64 slots.
  std::vector<std::int64_t> pack_counts() const { return impl_->pack_counts(); }
  /// Adds counts from a pack_counts() buffer. Throws std::invalid_argument on a malformed buffer.
  void add_packed_counts(const std::int64_t* data, std::size_t n) {
    impl_->add_packed_counts(data, n);
  }
  /// Zeroes counts and occupancy (not the clock).
  void clear_counts() { impl_->clear_counts(); }

  /// Clock state (for restart). full: [current, have_current, n_samples, origins[L], recent
  /// ring, dense_until]; multitau: [current, have_current, n_samples, origins[L], previous,
  /// level rings]. unpack_clock also takes a full clock without dense_until (older restart
  /// files): every atom then re-evaluates its pairs for one longest-lag window.
  std::vector<std::int64_t> pack_clock() const { return impl_->pack_clock(); }
  void unpack_clock(const std::int64_t* data, std::size_t n) { impl_->unpack_clock(data, n); }

 private:
  std::unique_ptr<HistoryCounter> impl_;
};

/// The totals of a counter (its local counts, origins, samples and occupancy) as one block
/// with index -1 (blocks.hpp).
CountBlock totals_block(const TransitionCounter& counter);

}  // namespace ionmsm
