#pragma once
// `history full`: every pair of samples (k, k + l) at which the atom was recorded is counted,
// event-driven (docs/theory.md, "Event-driven counting"). For each lag the pair (entry at
// k - l, entry at k) of an atom is piecewise constant in k and changes only when the atom
// changes entry (a hop, entering or leaving the recording) at k or at k - l. The counter keeps,
// per lag and pair, a RATE (how many atoms hold that pair now) and integrates it against a
// per-lag clock that ticks once per sampled origin; an atom only does work at a change of its
// entry ("change point") or when an earlier change point reaches one of its lags. Counts are
// linear in the rates, so atoms may migrate between counters (MPI ranks) without telling them:
// the sum over counters stays exact. Counts are integrated into the tables lazily, whenever
// they are read (settle()).
//
// Record layout (FullRecord): a header of kHeader = 8 values {last_seen, base_x, base_y,
// base_z, tag, cur, next_event, last_written}, then `max_lag` ring slots (slot = sample mod
// max_lag), then {n_changes, kChanges change points (ring), one "from" entry per lag}. An entry
// is -1 (empty: not recorded) or the packed value site + S * (e_x + R (e_y + R e_z)), an exact
// integer below 2^53, with S = 2^s the power of two >= nsites, R = 2^r = image_radix()
// (r = min(16, floor((53 - s) / 3))) and e = n - base + R/2 the image offset from the per-atom
// base image. last_seen is the atom's last recorded sample (-1: none), tag = kTagValue marks
// an initialised record, cur is the entry of last_seen (-1 while the atom is not being
// recorded), next_event the first sample at which one of its lag pairs changes, and the ring
// holds explicit entries up to last_written; later samples implicitly hold cur (or empty while
// not recorded). The "from" entry of lag i is the one its current pair was counted with. A slot
// of sample j counts only if j is in the global ring of sampled indices. An atom that is not
// recorded at a sample must be passed to drop_atom(); pairs of samples at which it WAS recorded
// are still counted across the gap. Sampling gaps (samples never taken) make every atom take
// the event path for max_lag samples. Image offsets that leave [0, R) rebase the atom: every
// live entry (a sampled index within the last max_lag samples) is re-encoded on the current
// image as base (or, if one does not fit, on the lowest image of the window + R/2); if the
// atom's images within its window span more than R - 1 (R >= 128; 2^16 for <= 32 sites, 4096
// for <= 65536 sites) the sample throws. Record size: kHeader + max_lag + 1 + kChanges +
// (number of lags) doubles.
#include <map>
#include <utility>

#include "ionmsm/counting_history.hpp"

namespace ionmsm {

/// Named offsets of a full-history record (layout above).
struct FullRecord {
  static constexpr int kLastSeen = 0;     ///< last recorded sample (-1: none)
  static constexpr int kBase = 1;         ///< base image x, y, z (3 values)
  static constexpr int kTag = 4;          ///< kTagValue in a record set by clear_history
  static constexpr int kCurrent = 5;      ///< entry of last_seen (-1: not being recorded)
  static constexpr int kNextEvent = 6;    ///< first sample at which a lag pair changes
  static constexpr int kLastWritten = 7;  ///< last sample with an explicit ring entry
  static constexpr int kHeader = 8;       ///< the ring of entries starts here
  static constexpr int kChanges = 16;     ///< change points kept per atom
  static constexpr double kTagValue = 1.0e15 + 17.0;
};

class FullHistoryCounter : public HistoryCounter {
 public:
  FullHistoryCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples);
  std::unique_ptr<HistoryCounter> clone() const override;
  HistoryConfig history() const override { return HistoryConfig::full(); }
  int doubles_per_atom() const override;
  void clear_history(double* record) const override;
  void drop_atom(double* record) override;
  void reset_rates() override;
  void restore_atom(const double* record) override;
  std::int64_t quiet_until(const double* record) const override;
  bool quiet_allowed() const override { return have_current_ && current_ > dense_until_; }
  void mark_quiet(double* record, std::int64_t last_sample) const override;
  void settle() const override;
  void set_cell(const Eigen::Matrix3d& h) override;

 protected:
  void advance_clock(std::int64_t sample_index) override;
  void add(double* record, const SiteImage& now) override;
  void pack_clock_tail(std::vector<std::int64_t>& out) const override;
  std::size_t clock_tail_size() const override;
  bool clock_tail_readable(std::size_t n) const override;
  void unpack_clock_tail(const std::int64_t* tail, std::size_t n, std::int64_t current,
                         bool have) override;

 private:
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
    RateSlot& slot(std::uint64_t key, std::uint64_t clock);
  };
  /// The parts of a record after its header.
  struct Tail {
    double* slots;      // max_lag ring entries
    double* n_changes;  // change points recorded so far
    double* changes;    // kChanges change points (ring)
    double* from;       // one per lag
  };
  Tail tail_of(const double* record) const;
  void event(double* record, const SiteImage& now);
  void check_header(const double* record) const;
  bool decode(double v, std::int64_t& u) const;
  void pair_rate(std::size_t lag, std::int64_t from, std::int64_t to, std::int64_t delta,
                 std::uint64_t clock);
  void occupancy_rate(std::int64_t site, std::int64_t delta, std::uint64_t clock);
  void settle_to(std::uint64_t sample_clock, const std::vector<std::uint64_t>& lag_clock) const;
  std::int64_t next_event(const double* record) const;
  /// One event of one atom (event()): what its steps share.
  struct Event {
    double* record;
    Tail parts;
    std::int64_t t;       // the current sample
    std::int64_t kmax;    // the longest lag
    std::int64_t lw;      // last sample with an explicit entry
    double fillv;         // the implicit entry after lw (cur, or -1 while not recorded)
    bool active;          // being recorded (at the previous sample)
    bool fits;            // the current image fits the base (no rebase)
    bool changed;         // the entry changes: a hop, or the recording starts
    std::int64_t ucur;    // the previous entry (active only)
    std::int64_t base[3], nb[3], ne[3];  // old and new base image, current offsets
    char* eval;           // per lag: the pair may change now
    std::int64_t* uold;   // per lag: the old pair's from entry (-1: none)
    std::int64_t vnow;    // the new entry (commit_entries)
    double entry_at(std::int64_t j) const { return j > lw ? fillv : parts.slots[j % kmax]; }
  };
  /// A live entry of the window (rebase): its sample, site and images.
  struct Live {
    std::int64_t j, site;
    std::int64_t img[3];
  };
  Event start_event(double* record, const SiteImage& now);
  void mark_lags_to_evaluate(Event& e) const;
  void decode_old_pairs(Event& e) const;
  void collect_window(const Event& e, std::vector<Live>& live) const;
  bool sampled_in_window(std::int64_t j) const;
  void choose_base(Event& e, const std::vector<Live>& live, const SiteImage& now) const;
  void commit_entries(Event& e, const std::vector<Live>& live, const SiteImage& now);
  void move_pair_rates(const Event& e, const SiteImage& now);
  void finish_event(Event& e);
  /// The site and the image offset along axis d of a packed entry.
  std::int64_t site_of(std::int64_t entry) const {
    return entry & ((std::int64_t{1} << sbits_) - 1);
  }
  std::int64_t offset_of(std::int64_t entry, int d) const {
    return (entry >> (sbits_ + d * rbits_)) & (radix_ - 1);
  }

  std::int64_t prev_sample_ = -1;        // the sample before current_ (-1: none)
  std::int64_t dense_until_ = -1;        // every atom takes the event path up to here
  int sbits_ = 0;                        // S = 2^sbits >= nsites
  int rbits_ = 0;                        // R = 2^rbits
  double limit_ = 0.0;                   // 2^(sbits + 3 rbits) <= 2^53
  std::uintptr_t last_record_ = 0;       // previous record address (stride detection)
  std::intptr_t last_stride_ = 0;
  std::vector<std::int32_t> lag_index_;  // index of lag d in lags_, or -1 (d <= max lag)
  std::vector<std::int64_t> scratch_u_;  // per-call entries
  std::vector<char> scratch_use_;
  mutable std::vector<LagRates> rates_;  // per lag
  std::vector<std::int64_t> occ_rate_;   // atoms recorded per site
  mutable std::vector<std::uint64_t> occ_stamp_;
  std::vector<std::uint64_t> clk_, clk_prev_;  // sampled origins per lag, after / before
  std::uint64_t sclk_ = 0, sclk_prev_ = 0;     // samples, after / before current_
  mutable bool unsettled_ = false;
  std::vector<std::int64_t> recent_;  // ring of sampled indices, slot = k mod max_lag, -1 = none
};

}  // namespace ionmsm
