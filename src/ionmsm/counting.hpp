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
// unchanged). Two history modes (HistoryConfig):
//
// * full (default): every pair of samples (k, k + l) at which the atom was recorded is counted.
//   Counting is event-driven (docs/theory.md, "Event-driven counting"): for each lag the pair
//   (entry at k - l, entry at k) of an atom is piecewise constant in k and changes only when
//   the atom changes entry (a hop, entering or leaving the recording) at k or at k - l. The
//   counter keeps, per lag and pair, a RATE (how many atoms hold that pair now) and integrates
//   it against a per-lag clock that ticks once per sampled origin; an atom only does work at
//   a change of its entry ("change point") or when an earlier change point reaches one of its
//   lags. Counts are linear in the rates, so atoms may migrate between counters (MPI ranks)
//   without telling them: the sum over counters stays exact. Counts are integrated into the
//   tables lazily, whenever they are read (table(), occupancy(), pack_counts(), moments).
//   Record layout (doubles): a header of kFullHeader = 8 values {last_seen, base_x, base_y,
//   base_z, tag, cur, next_event, last_written}, then `max_lag` ring slots (slot = sample mod
//   max_lag), then {n_changes, kFullChanges change points (ring), one "from" entry per lag}.
//   An entry is -1 (empty: not recorded) or the packed value site + S * (e_x + R (e_y + R
//   e_z)), an exact integer below 2^53, with S = 2^s the power of two >= nsites, R = 2^r =
//   image_radix() (r = min(16, floor((53 - s) / 3))) and e = n - base + R/2 the image offset
//   from the per-atom base image. last_seen is the atom's last recorded sample (-1: none),
//   tag = kFullTag marks an initialised record, cur is the entry of last_seen (-1 while the
//   atom is not being recorded), next_event the first sample at which one of its lag pairs
//   changes, and the ring holds explicit entries up to last_written; later samples implicitly
//   hold cur (or empty while not recorded). The "from" entry of lag i is the one its current
//   pair was counted with. A slot of sample j counts only if j is in the global ring of
//   sampled indices. An atom that is not recorded at a sample must be passed to drop_atom()
//   (fix msm does this for atoms outside its group); pairs of samples at which it WAS
//   recorded are still counted across the gap. Sampling gaps (samples never taken) make every
//   atom take the event path for max_lag samples. Image offsets that leave [0, R) rebase the
//   atom: every live entry (a sampled index within the last max_lag samples) is re-encoded on
//   the current image as base (or, if one does not fit, on the lowest image of the window +
//   R/2); if the atom's images within its window span more than R - 1 (R >= 128; 2^16 for
//   <= 32 sites, 4096 for <= 65536 sites) the sample throws, as in multitau mode. Record
//   size: kFullHeader + max_lag + 1 + kFullChanges + (number of lags) doubles.
//
// * multitau M: bounded memory. Level k keeps the atom's last M samples whose index is a
//   multiple of 2^k (slot = (j / 2^k) mod M); only the levels that some lag uses are stored.
//   A lag of l samples is counted at the LOWEST level k with l % 2^k == 0 and l / 2^k <= M
//   (a lag with no such level is refused by the constructor); its origins are the sampled j
//   with j % 2^k == 0 and j + l sampled. Record: {valid_since, last_sample, base_x, base_y,
//   base_z} followed by M packed entries per stored level; an entry is
//   site + nsites * (e_x + R (e_y + R e_z)) with e = n - base + R/2 and R = image_radix(), an
//   exact integer in a double. Entry validity is implied: the entry of sample j is valid iff
//   j >= valid_since and j is still in the level's global ring of sampled indices. An atom
//   that misses a global sample (it left the group, or its record was cleared) restarts its
//   history at its next sample (valid_since = that sample), so no pair spans such a gap.
//   Global sampling gaps (samples never taken) do not restart histories: as in full mode a
//   pair (j, j + l) is counted whenever both were sampled.
//
// Optionally (set_site_fractional), every counted pair with from != to or a nonzero shift also
// adds its site-projected displacement delta = H (f_to - f_from + shift), with H the cell set by
// set_cell() for the later sample, to per-lag first and second moments.
#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

/// Per-atom history scheme (see the comment above).
struct HistoryConfig {
  enum class Mode { Full, MultiTau };
  Mode mode = Mode::Full;
  std::int64_t m = 0;  ///< entries per level (multitau only), >= 1
  static HistoryConfig full() { return {}; }
  static HistoryConfig multitau(std::int64_t m) { return {Mode::MultiTau, m}; }
  const char* name() const { return mode == Mode::Full ? "full" : "multitau"; }
};

/// Multi-tau level at which a lag of `lag` samples is counted with M entries per level: the
/// lowest k with lag % 2^k == 0 and lag / 2^k <= m; -1 if there is none.
int multitau_level(std::int64_t lag, std::int64_t m);
/// The largest representable lag below `lag` and the smallest above it (a lag is
/// representable iff it is j * 2^k with 1 <= j <= m); first is 0 if there is none below.
std::pair<std::int64_t, std::int64_t> multitau_neighbours(std::int64_t lag, std::int64_t m);

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

/// Sparse 64-bit counts for one lag, keyed by (from, to, shift). Staying on a site with zero
/// shift (by far the most common event) goes to a dense per-site array.
class CountTable {
 public:
  CountTable() = default;
  explicit CountTable(std::size_t nsites);
  void add(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t n = 1);
  /// add() without the range check, for the counting kernel (sites already validated).
  void add_unchecked(SiteIndex from, SiteIndex to, const Image& shift) {
    if (from == to && shift[0] == 0 && shift[1] == 0 && shift[2] == 0) {
      ++stay_[static_cast<std::size_t>(from)];
      return;
    }
    add_moving(from, to, shift);
  }
  /// One stay on site s (no range check).
  void add_stay(SiteIndex s) { ++stay_[static_cast<std::size_t>(s)]; }
  /// n stays on site s (no range check; counts wrap modulo 2^64, so a counter may hold the
  /// "negative" part of a count whose sum over counters is exact).
  void add_stay_n(SiteIndex s, std::uint64_t n) { stay_[static_cast<std::size_t>(s)] += n; }
  /// (from, to, shift) as one 63-bit key; false if it does not fit (sites >= 2^21, shifts
  /// outside [-64, 63]).
  static bool pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key);
  static void unpack(std::uint64_t key, SiteIndex& from, SiteIndex& to, Image& shift);
  /// n counts of a packed key (no range check).
  void add_packed(std::uint64_t key, std::uint64_t n) {
    if (n != 0) bump_packed(key, n);
  }
  /// One count of a pair that is not a stay (no range check).
  void add_moving(SiteIndex from, SiteIndex to, const Image& shift);
  /// Nonzero entries sorted by (from, to, shift).
  std::vector<TransitionCount> rows() const;
  std::uint64_t total() const;
  void clear();
  std::size_t nsites() const { return stay_.size(); }

 private:
  void bump_packed(std::uint64_t key, std::uint64_t n);
  void grow_packed();
  // Open-addressing hash table (linear probing, power-of-two capacity, load <= 1/2) of the
  // packed keys (63 bits, so kEmptyKey never collides with a key).
  struct PackedSlot {
    std::uint64_t key;
    std::uint64_t n;
  };
  static constexpr std::uint64_t kEmptyKey = ~std::uint64_t{0};
  std::vector<std::uint64_t> stay_;
  std::vector<PackedSlot> packed_;
  std::size_t packed_used_ = 0;
  int packed_shift_ = 64;
  std::map<CountKey, std::uint64_t> overflow_;
};

class TransitionCounter {
 public:
  /// full record header: last_seen, base image (3), tag, cur, next_event, last_written
  static constexpr int kFullHeader = 8;
  /// full record: change points kept per atom (more within max_lag samples: event every sample)
  static constexpr int kFullChanges = 16;
  /// value of the header's tag in an initialised full-mode record
  static constexpr double kFullTag = 1.0e15 + 17.0;
  /// multitau record header: valid_since, last_sample, base image (3)
  static constexpr int kMultiTauHeader = 5;
  static constexpr std::int64_t kMaxMultiTauM = std::int64_t{1} << 20;

  TransitionCounter() = default;
  /// lag_samples: lags in samples, each >= 1, strictly increasing. Throws std::invalid_argument
  /// (also, in multitau mode, for a lag no level represents, naming its nearest neighbours).
  TransitionCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples,
                    HistoryConfig history = HistoryConfig::full());

  const HistoryConfig& history() const { return history_; }
  /// Level of lag i (0 in full mode): its origins are the sampled multiples of 2^level.
  int lag_level(std::size_t i) const { return lag_level_[i]; }
  /// Multitau: the stored levels, ascending (empty in full mode).
  const std::vector<int>& stored_levels() const { return levels_; }
  /// The radix R of the packed image offsets (offsets must lie in [-R/2, R - 1 - R/2]); in
  /// full mode a power of two.
  std::int64_t image_radix() const { return radix_; }

  /// Enables the displacement moments (fractional site coordinates, one per site; throws
  /// std::invalid_argument on a size mismatch or a non-finite value).
  void set_site_fractional(const std::vector<Eigen::Vector3d>& frac);
  bool has_moments() const { return !site_frac_.empty(); }
  /// The cell H (columns = cell vectors) of the current sample, for the displacements (call
  /// after begin_sample, before the sample's atoms).
  void set_cell(const Eigen::Matrix3d& h);
  /// Sum over counted pairs of delta (3) and of delta delta^T (3x3) for lag i.
  const Eigen::Vector3d& displacement_sum(std::size_t i) const {
    settle();
    return disp_sum_[i];
  }
  const Eigen::Matrix3d& displacement_sq_sum(std::size_t i) const {
    settle();
    return disp_sq_[i];
  }
  /// Moments as a flat buffer of 12 doubles per lag (sum x,y,z then the 3x3 row-major).
  std::vector<double> pack_moments() const;
  /// Adds a pack_moments() buffer. Throws std::invalid_argument on a size mismatch.
  void add_packed_moments(const double* data, std::size_t n);
  /// Adds samples and origins taken elsewhere (counts appended from an earlier run): changes
  /// n_samples() and n_origins() only, never the clock. Throws on a size mismatch.
  void add_totals(std::uint64_t n_samples, const std::vector<std::uint64_t>& origins);

  std::size_t nsites() const { return occupancy_.size(); }
  std::size_t num_lags() const { return lags_.size(); }
  std::int64_t lag_samples(std::size_t i) const { return lags_[i]; }
  const std::vector<std::int64_t>& lags() const { return lags_; }
  std::int64_t max_lag_samples() const { return lags_.empty() ? 0 : lags_.back(); }

  /// Size of one atom's history record in doubles.
  int doubles_per_atom() const;
  /// Marks every slot of a record empty (a new atom). Full mode: a record that is being
  /// recorded (its atom was sampled and not dropped since) must be dropped first.
  void clear_history(double* record) const;
  /// Full mode: the atom is not recorded from now on (left the group, deleted): after its last
  /// recorded sample, its pairs stop. No-op for a record not being recorded, and in multitau
  /// mode (which detects missed samples by itself). Throws std::invalid_argument for a corrupt
  /// record or one that missed samples without being dropped.
  void drop_atom(double* record);
  /// Full mode, for a counter whose atoms changed outside the sampling (restart, atoms
  /// deleted or created between runs): integrates what was counted so far, forgets every rate,
  /// then restore_atom() is called for each atom present to restore its pairs.
  void reset_rates();
  void restore_atom(const double* record);
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
  std::int64_t quiet_until(const double* record) const;
  /// Whether atoms may skip the current sample (full mode, after begin_sample, and no sampling
  /// gap within the last max_lag samples).
  bool quiet_allowed() const {
    return history_.mode == HistoryConfig::Mode::Full && have_current_ && current_ > dense_until_;
  }
  /// The atom, unchanged since its last add_atom_sample call, was recorded at every sample
  /// through `last_sample` (a sample already begun) without being passed: updates the record.
  /// Throws std::invalid_argument in multitau mode, for a record that is not being recorded,
  /// and for a last_sample before the record's last sample, after the current sample or at or
  /// after quiet_until(record).
  void mark_quiet(double* record, std::int64_t last_sample) const;
  /// Integrates every open rate into the count tables, occupancy and moments (the accessors
  /// do this themselves).
  void settle() const;

  /// Advance the global clock to sample `sample_index` (call on every rank, once per sample,
  /// before add_atom_sample). Throws std::invalid_argument unless sample_index increases.
  void begin_sample(std::int64_t sample_index);
  std::int64_t current_sample() const { return current_; }
  bool has_sample() const { return have_current_; }

  /// Record one atom's site at the current sample: counts every lag whose origin sample is in
  /// the record, then stores the new entry. Throws std::invalid_argument for a site index out of
  /// range.
  void add_atom_sample(double* record, const SiteImage& now);

  const CountTable& table(std::size_t lag_index) const {
    settle();
    return tables_[lag_index];
  }
  /// Number of sampled time origins k with a sample at k + l (global, identical on every rank).
  std::uint64_t n_origins(std::size_t lag_index) const { return origins_[lag_index]; }
  /// Number of samples taken (global).
  std::uint64_t n_samples() const { return n_samples_; }
  /// Atom-samples per site (local to this counter until reduced).
  const std::vector<std::uint64_t>& occupancy() const {
    settle();
    return occupancy_;
  }

  /// Counts and occupancy as a flat int64 buffer (for MPI reduction and restart files):
  /// [nsites, nrows, occupancy[nsites], then nrows x {lag_index, from, to, sx, sy, sz, count}].
  /// Counts are stored bit-for-bit as uint64 in int64 slots.
  std::vector<std::int64_t> pack_counts() const;
  /// Adds counts from a pack_counts() buffer. Throws std::invalid_argument on a malformed buffer.
  void add_packed_counts(const std::int64_t* data, std::size_t n);
  /// Zeroes counts and occupancy (not the clock).
  void clear_counts();

  /// Clock state (for restart). full: [current, have_current, n_samples, origins[L], recent
  /// ring, dense_until]; multitau: [current, have_current, n_samples, origins[L], previous,
  /// level rings]. unpack_clock also takes a full clock without dense_until (older restart
  /// files): every atom then re-evaluates its pairs for one longest-lag window.
  std::vector<std::int64_t> pack_clock() const;
  void unpack_clock(const std::int64_t* data, std::size_t n);

 private:
  // full mode (counting_full.cpp)
  struct RateSlot {
    std::uint64_t key;
    std::int64_t rate;
    std::uint64_t stamp;
    std::int64_t pending;  // count integrated into this slot but not yet into tables_ (settle)
  };
  struct LagRates {
    std::vector<std::int64_t> stay_rate;
    std::vector<std::uint64_t> stay_stamp;
    std::vector<RateSlot> moving;  // open addressing on CountTable's packed keys
    std::size_t used = 0;
    int shift = 64;
    std::map<CountKey, std::pair<std::int64_t, std::uint64_t>> overflow;  // rate, stamp
  };
  void add_full(double* record, const SiteImage& now);
  void full_event(double* record, const SiteImage& now);
  void full_check_header(const double* record) const;
  bool full_decode(double v, std::int64_t& u) const;
  void full_pair_rate(std::size_t lag, std::int64_t from, std::int64_t to, std::int64_t delta,
                      std::uint64_t clock);
  void occupancy_rate(std::int64_t site, std::int64_t delta, std::uint64_t clock);
  void settle_to(std::uint64_t sample_clock, const std::vector<std::uint64_t>& lag_clock) const;
  std::int64_t full_next_event(const double* record) const;
  void add_multitau(double* record, const SiteImage& now);
  void add_moment(std::size_t lag_index, SiteIndex from, SiteIndex to, const Image& shift,
                  double weight = 1.0) const;
  double encode(const SiteImage& s, const double* base) const;
  bool decode(double v, const double* base, SiteImage& out) const;

  HistoryConfig history_;
  std::vector<int> lag_level_;            // per lag
  std::vector<int> levels_;               // multitau: stored levels, ascending
  std::vector<int> lag_slot_;             // multitau: index into levels_ per lag
  std::vector<std::vector<std::int64_t>> level_ring_;  // multitau: sampled index per slot
  std::vector<char> origin_ok_;           // multitau: origin of lag i sampled (this sample)
  std::int64_t previous_ = -1;            // multitau: the sample before current_ (-1 none)
  std::int64_t radix_ = 0;
  std::vector<SiteImage> scratch_from_;   // multitau: per-call scratch
  std::int64_t prev_sample_ = -1;         // full: the sample before current_ (-1: none)
  std::int64_t dense_until_ = -1;         // full: every atom takes the event path up to here
  int full_sbits_ = 0;                    // full: S = 2^sbits >= nsites
  int full_rbits_ = 0;                    // full: R = 2^rbits
  double full_limit_ = 0.0;               // full: 2^(sbits + 3 rbits) <= 2^53
  std::uintptr_t last_record_ = 0;        // full: previous record address (stride detection)
  std::intptr_t last_stride_ = 0;
  std::vector<std::int32_t> lag_index_;   // full: index of lag d in lags_, or -1 (d <= max lag)
  std::vector<std::int64_t> scratch_u_;   // full: per-call entries
  std::vector<char> scratch_use_;
  mutable std::vector<LagRates> rates_;         // full: per lag
  std::vector<std::int64_t> occ_rate_;          // full: atoms recorded per site
  mutable std::vector<std::uint64_t> occ_stamp_;
  std::vector<std::uint64_t> clk_, clk_prev_;   // full: sampled origins per lag, after / before
  std::uint64_t sclk_ = 0, sclk_prev_ = 0;      // full: samples, after / before current_
  mutable bool unsettled_ = false;
  std::vector<Eigen::Vector3d> site_frac_;
  Eigen::Matrix3d cell_ = Eigen::Matrix3d::Identity();
  mutable std::vector<Eigen::Vector3d> disp_sum_;
  mutable std::vector<Eigen::Matrix3d> disp_sq_;
  std::vector<std::int64_t> lags_;
  mutable std::vector<CountTable> tables_;
  std::vector<std::uint64_t> origins_;
  mutable std::vector<std::uint64_t> occupancy_;
  std::vector<std::int64_t> recent_;  // ring of sampled indices, slot = k mod max_lag, -1 = none
  std::int64_t current_ = -1;
  bool have_current_ = false;
  std::uint64_t n_samples_ = 0;
};

}  // namespace ionmsm
