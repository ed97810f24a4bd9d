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
//   Record: a header of kFullHeader = 5 values {last_sample, base_x, base_y, base_z, tag}
//   followed by `max_lag` slots of ONE double each, slot = sample mod max_lag. A slot holds
//   -1 (empty) or the packed entry site + S * (e_x + R (e_y + R e_z)), an exact integer below
//   2^53, with S = 2^s the power of two >= nsites, R = 2^r = image_radix() (r = min(16,
//   floor((53 - s) / 3))) and e = n - base + R/2 the image offset from the per-atom base image
//   (decoding is shift and mask on the int64 of the double). last_sample is the atom's last
//   recorded sample (-1: none since clear_history) and tag = kFullTag marks an initialised
//   record. The sample index of a slot is not stored: the slot of sample j (read at sample
//   k = j + l) is valid iff j is still in the global ring of sampled indices (recent_, checked
//   once per sample for all atoms) and the slot is not empty. An atom that misses samples (it
//   left the group) has, at its next sample, the ring slots of every sample it missed since its
//   last_sample set to empty, so pairs of samples at which it WAS recorded are still counted
//   across the gap (as before: pairs are matched by sample index). Image offsets that leave
//   [0, R) rebase the atom: every live entry (sampled within the last max_lag samples, not
//   empty) is re-encoded on the current image as base (or, if one does not fit, on the lowest
//   image of the window + R/2); if the atom's images within its history window span more than
//   R - 1 (R >= 128; 2^16 for <= 32 sites, 4096 for <= 65536 sites) the sample throws, as in
//   multitau mode. A pair whose entry equals the new entry exactly is a stay (same site, zero
//   shift), counted without decoding. Record size: kFullHeader + max_lag doubles.
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
  /// One count of a pair that is not a stay (no range check).
  void add_moving(SiteIndex from, SiteIndex to, const Image& shift);
  /// Nonzero entries sorted by (from, to, shift).
  std::vector<TransitionCount> rows() const;
  std::uint64_t total() const;
  void clear();
  std::size_t nsites() const { return stay_.size(); }

 private:
  static bool pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key);
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
  /// full record header: last_sample, base image (3), tag (then one double per slot)
  static constexpr int kFullHeader = 5;
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
  /// The cell H (columns = cell vectors) of the current sample, for the displacements.
  void set_cell(const Eigen::Matrix3d& h) { cell_ = h; }
  /// Sum over counted pairs of delta (3) and of delta delta^T (3x3) for lag i.
  const Eigen::Vector3d& displacement_sum(std::size_t i) const { return disp_sum_[i]; }
  const Eigen::Matrix3d& displacement_sq_sum(std::size_t i) const { return disp_sq_[i]; }
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

  /// Clock state (for restart). full: [current, have_current, n_samples, origins[L], recent
  /// ring]; multitau: [current, have_current, n_samples, origins[L], previous, level rings].
  std::vector<std::int64_t> pack_clock() const;
  void unpack_clock(const std::int64_t* data, std::size_t n);

 private:
  void add_full(double* record, const SiteImage& now);
  void compute_full_offsets(std::int64_t k);
  void full_fill_gap(double* slots, std::int64_t last) const;
  void full_rebase(double* record, const SiteImage& now) const;
  bool full_decode(double v, std::int64_t& u) const;
  void add_multitau(double* record, const SiteImage& now);
  void add_moment(std::size_t lag_index, SiteIndex from, SiteIndex to, const Image& shift);
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
  std::vector<std::int64_t> full_read_;   // full: per lag, slot of k - l (-1: not sampled)
  std::int64_t full_write_ = 0;           // full: slot of k
  std::int64_t full_prev_ = -1;           // full: last sample before k in (k - max_lag, k)
  int full_sbits_ = 0;                    // full: S = 2^sbits >= nsites
  int full_rbits_ = 0;                    // full: R = 2^rbits
  double full_limit_ = 0.0;               // full: 2^(sbits + 3 rbits) <= 2^53
  std::vector<std::int64_t> scratch_u_;   // full: per-call packed entries
  std::vector<std::int64_t> prefetch_;    // full: slot offsets to prefetch (sorted, >= 1 line apart)
  std::uintptr_t last_record_ = 0;        // full: previous record address (stride detection)
  std::intptr_t last_stride_ = 0;
  std::vector<char> scratch_use_;
  std::vector<Eigen::Vector3d> site_frac_;
  Eigen::Matrix3d cell_ = Eigen::Matrix3d::Identity();
  std::vector<Eigen::Vector3d> disp_sum_;
  std::vector<Eigen::Matrix3d> disp_sq_;
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
