#pragma once
// `history multitau M`: bounded memory. Level k keeps the atom's last M samples whose index is
// a multiple of 2^k (slot = (j / 2^k) mod M); only the levels that some lag uses are stored.
// A lag of l samples is counted at the LOWEST level k with l % 2^k == 0 and l / 2^k <= M
// (multitau_level; a lag with no such level is refused by the constructor); its origins are
// the sampled j with j % 2^k == 0 and j + l sampled.
//
// Record layout (MultiTauRecord): {valid_since, last_sample, base_x, base_y, base_z} followed
// by M packed entries per stored level; an entry is site + nsites * (e_x + R (e_y + R e_z))
// with e = n - base + R/2 and R = image_radix(), an exact integer in a double. Entry validity
// is implied: the entry of sample j is valid iff j >= valid_since and j is still in the
// level's global ring of sampled indices. An atom that misses a global sample (it left the
// group, or its record was cleared) restarts its history at its next sample (valid_since =
// that sample), so no pair spans such a gap. Global sampling gaps (samples never taken) do not
// restart histories: as in full mode a pair (j, j + l) is counted whenever both were sampled.
#include "ionmsm/counting_history.hpp"

namespace ionmsm {

/// Named offsets of a multitau record (layout above).
struct MultiTauRecord {
  static constexpr int kValidSince = 0;  ///< first sample of the current history (-1: none)
  static constexpr int kLastSample = 1;  ///< last recorded sample (-1: none)
  static constexpr int kBase = 2;        ///< base image x, y, z (3 values)
  static constexpr int kHeader = 5;      ///< the level rings start here
};

class MultiTauCounter : public HistoryCounter {
 public:
  /// Throws std::invalid_argument for M outside [1, kMaxMultiTauM] and for a lag no level
  /// represents (naming its nearest neighbours).
  MultiTauCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples, std::int64_t m);
  std::unique_ptr<HistoryCounter> clone() const override;
  HistoryConfig history() const override { return HistoryConfig::multitau(m_); }
  int doubles_per_atom() const override;
  void clear_history(double* record) const override;
  const std::vector<int>& stored_levels() const override { return levels_; }

 protected:
  void advance_clock(std::int64_t sample_index) override;
  void add(double* record, const SiteImage& now) override;
  void pack_clock_tail(std::vector<std::int64_t>& out) const override;
  std::size_t clock_tail_size() const override;
  void unpack_clock_tail(const std::int64_t* tail, std::size_t n, std::int64_t current,
                         bool have) override;

 private:
  double encode(const SiteImage& s, const double* base) const;
  bool decode(double v, const double* base, SiteImage& out) const;
  /// Pass 1 of add(): decodes the origin entry of every lag counted now into scratch_from_
  /// (scratch_use_: 0 none, 1 decoded, 2 a stay on the current entry); throws before anything
  /// is written.
  void read_origins(const double* record, const SiteImage& now);
  void count_pairs(const SiteImage& now);
  /// Re-encodes every valid entry on the current image (its offset left [0, R)).
  void rebase(double* record, const SiteImage& now) const;
  double* level_entries(double* record, std::size_t li) const {
    return record + MultiTauRecord::kHeader + li * static_cast<std::size_t>(m_);
  }

  std::int64_t m_ = 0;                   // entries per level
  std::vector<int> levels_;              // stored levels, ascending
  std::vector<int> lag_slot_;            // index into levels_ per lag
  std::vector<std::vector<std::int64_t>> level_ring_;  // sampled index per slot
  std::int64_t previous_ = -1;           // the sample before current_ (-1 none)
  std::vector<SiteImage> scratch_from_;  // per-call scratch
  std::vector<char> scratch_use_;
};

}  // namespace ionmsm
