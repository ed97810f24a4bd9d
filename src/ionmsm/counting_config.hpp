#pragma once
// Every fix msm setting that affects what is counted or written (docs/fix_msm.rst), as plain
// data with enum modes, one validate(), and the name tables of the fix syntax and the counts
// file ("full", "multitau", "nearest", "core", ...). The fix parses its arguments into a
// CountingConfig, checks it here and hands it to the counter, the restart state
// (counting_restart.hpp) and the counts file.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ionmsm {

/// Per-atom history scheme of the counter (counting.hpp): every sample pair (full) or M
/// entries per multi-tau level (multitau M).
struct HistoryConfig {
  enum class Mode { Full, MultiTau };
  Mode mode = Mode::Full;
  std::int64_t m = 0;  ///< entries per level (multitau only), >= 1
  static HistoryConfig full() { return {}; }
  static HistoryConfig multitau(std::int64_t m) { return {Mode::MultiTau, m}; }
  /// The mode's name in the fix syntax and the counts file: "full" or "multitau".
  const char* name() const;
  /// "full" or "multitau M" (messages).
  std::string text() const;
  bool operator==(const HistoryConfig& o) const { return mode == o.mode && m == o.m; }
  bool operator!=(const HistoryConfig& o) const { return !(*this == o); }
};
/// The mode named `name` ("full", "multitau"), or none.
std::optional<HistoryConfig::Mode> history_mode_from_name(const std::string& name);
/// Every history mode name, quoted, for messages: "'full' or 'multitau'".
std::string history_mode_choices();

/// How an atom's position becomes a site: the nearest site, or core-based (the last site whose
/// core of radius R the atom entered).
enum class AssignMode { Nearest, Core };
/// "nearest" or "core" (fix syntax and counts file).
const char* assign_mode_name(AssignMode mode);
std::optional<AssignMode> assign_mode_from_name(const std::string& name);
/// "'nearest' or 'core'" (messages).
std::string assign_mode_choices();

/// Where the sites come from: the atoms of a LAMMPS group, or a sites file.
enum class SitesSource { Group, File };
const char* sites_source_name(SitesSource source);
std::optional<SitesSource> sites_source_from_name(const std::string& name);

/// Multi-tau level at which a lag of `lag` samples is counted with M entries per level: the
/// lowest k with lag % 2^k == 0 and lag / 2^k <= m; -1 if there is none.
int multitau_level(std::int64_t lag, std::int64_t m);
/// The largest representable lag below `lag` and the smallest above it (a lag is
/// representable iff it is j * 2^k with 1 <= j <= m); first is 0 if there is none below.
std::pair<std::int64_t, std::int64_t> multitau_neighbours(std::int64_t lag, std::int64_t m);

struct CountingConfig {
  static constexpr std::int64_t kMaxMultiTauM = std::int64_t{1} << 20;

  std::int64_t nevery_steps = 0;        ///< Nevery: sampling interval in timesteps
  std::vector<std::int64_t> lag_steps;  ///< lags: in timesteps, as given
  SitesSource sites = SitesSource::Group;
  std::string sites_arg;                ///< sites group ID or sites file path
  std::string outfile;                  ///< file: the counts file
  std::int64_t every_steps = 0;         ///< every Nout: checkpoint interval (0: end of runs)
  HistoryConfig history;                ///< history full|multitau M
  AssignMode assign = AssignMode::Nearest;
  double core_radius = 0.0;             ///< assign core R: in length units (0 for nearest)
  bool append = false;                  ///< append yes|no
  bool overwrite = false;               ///< overwrite yes|no
  std::int64_t block_steps = 0;         ///< blocks Nb: in timesteps (0: no blocks)

  /// Throws std::invalid_argument naming the keyword of the first invalid setting (Nevery,
  /// lags, every, history, assign, blocks, append/overwrite).
  void validate() const;
  /// lag_steps, ascending.
  std::vector<std::int64_t> sorted_lags() const;
  /// The lags in samples (lag_steps / nevery_steps), ascending.
  std::vector<std::int64_t> lag_samples() const;
  /// "nearest" or "core R" (messages).
  std::string assign_text() const;
};

}  // namespace ionmsm
