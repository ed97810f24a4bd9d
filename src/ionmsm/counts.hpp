#pragma once
// The transition counts as plain data: one counted transition, the counts of one lag, the
// counts of one block of samples, and everything a counts file holds. No I/O and no counting
// here: counts_file.hpp reads and writes these types, counting.hpp fills them, and the
// numerics (msm.hpp, transport.hpp) read them. The history and assignment modes are the enums
// of counting_config.hpp (plain data, no kernel). Field meanings: docs/file-format.md.
#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ionmsm/counting_config.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

/// One row of the counts: `count` transitions from site `from` to site `to` with the lattice
/// shift `shift` (periodic images crossed) in one lag.
struct TransitionCount {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  std::uint64_t count = 0;
};

struct LagCounts {
  std::int64_t lag_steps = 0;
  std::uint64_t n_origins = 0;             ///< sampled origins t with a sample at t + lag
  std::vector<TransitionCount> rows;       ///< sorted by (from, to, shift)
  /// Optional (/lags/level): multitau level; origins are the sampled multiples of 2^level.
  int level = 0;
  /// Optional (CountsData::has_displacement): sums over counted pairs with a site change or a
  /// nonzero shift of delta = H(t + lag) (f_to - f_from + shift) and of delta delta^T.
  Eigen::Vector3d displacement_sum = Eigen::Vector3d::Zero();
  Eigen::Matrix3d displacement_sq_sum = Eigen::Matrix3d::Zero();
  std::uint64_t total() const;
};

/// Optional (/blocks): the counts of one block of samples. Block b holds every counted pair
/// whose later sample lies in timesteps [b * block_steps, (b + 1) * block_steps), and the
/// samples, origins and occupancy of those timesteps; summed over all blocks they give the
/// file's totals exactly (docs/file-format.md, "Blocks").
struct CountBlock {
  std::int64_t index = 0;                          ///< b (blocks of appended runs may repeat)
  std::uint64_t n_samples = 0;                     ///< samples taken in the block
  std::vector<std::uint64_t> occupancy;            ///< per site, atom-samples in the block
  std::vector<std::uint64_t> n_origins;            ///< per lag
  std::vector<std::vector<TransitionCount>> rows;  ///< per lag, sorted by (from, to, shift)
  std::uint64_t total() const;                     ///< all counts of all lags
};

struct CountsData {
  // provenance
  std::string ionmsm_version;
  std::string lammps_version;
  std::string command;        ///< the fix command line
  // time and units
  std::string units;          ///< LAMMPS units style ("metal", "real", ...)
  double timestep = 0.0;      ///< in the units style's time unit
  double timestep_ps = 0.0;   ///< the same in picoseconds (0 for lj units)
  std::int64_t nevery = 1;    ///< sampling interval in timesteps
  std::int64_t first_step = -1, last_step = -1;  ///< first and last sampled timestep
  std::uint64_t n_samples = 0;
  std::int64_t n_atoms = 0;   ///< atoms in the fix group
  // geometry
  Eigen::Vector3d box_origin = Eigen::Vector3d::Zero();   ///< cell at the last sample
  Eigen::Matrix3d box_h = Eigen::Matrix3d::Identity();    ///< columns = cell vectors
  std::vector<Eigen::Vector3d> site_fractional;           ///< fractional site coordinates
  std::vector<std::string> site_labels;                   ///< may be empty
  std::vector<std::uint64_t> occupancy;                   ///< atom-samples per site
  // counts
  std::vector<LagCounts> lags;                            ///< increasing lag_steps
  // optional additions of format version 1 (absent in older files; see docs/file-format.md)
  /// History scheme and multitau M (/@history, /@history_m); none = not recorded.
  std::optional<HistoryConfig> history;
  std::int64_t doubles_per_atom = 0;   ///< fix msm per-atom record size; 0 = not recorded
  bool has_levels = false;             ///< LagCounts::level recorded (/lags/level)
  std::optional<AssignMode> assign;    ///< /@assign; none = not recorded
  double core_radius = 0.0;            ///< assign core: R in length units
  std::uint64_t n_outside_core = 0;    ///< assign core: atom-samples outside every core
  bool has_displacement = false;       ///< /lags/displacement_sum and _sq_sum present
  std::int64_t block_steps = 0;        ///< > 0: /blocks present with blocks of this many steps
  std::vector<CountBlock> blocks;      ///< block_steps > 0: in the order they were counted

  std::size_t nsites() const { return site_fractional.size(); }
  /// Cartesian site positions in the stored cell.
  std::vector<Eigen::Vector3d> site_cartesian() const;
  /// Index of a lag in `lags`, or -1.
  int find_lag(std::int64_t lag_steps) const;
  /// Throws std::invalid_argument if internally inconsistent (sizes, ranges, ordering).
  void validate() const;
};

}  // namespace ionmsm
