#pragma once
// The counts file (HDF5), written by fix msm and read by the ionmsm tool. Schema, units and
// version history: docs/file-format.md. Tag "ionmsm-counts", version kCountsFormatVersion.
#include <Eigen/Dense>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/units.hpp"

namespace ionmsm {

/// Writes atomically: to "PATH.tmp.<pid>" then rename, so a reader never sees a partial file.
/// Throws std::runtime_error naming the path on any I/O failure (the temporary is removed).
void write_counts_file(const std::string& path, const CountsData& data);
/// Throws std::runtime_error naming the path: missing/unreadable file, not an ionmsm counts
/// file, unsupported format version, inconsistent contents.
CountsData read_counts_file(const std::string& path);

/// Checks that counts taken with `now` can be appended to (added to) those of `old`: same
/// nevery, lags, sites (number and fractional coordinates within 1e-9), units, timestep, and,
/// where both record them, history mode, M and assignment (incl. core radius), and the block
/// length (0 = no blocks; must match, so that no counts fall outside the blocks). Throws
/// std::invalid_argument naming the first mismatch and both values.
void check_appendable(const CountsData& old, const CountsData& now);

/// Canonical CSV: header "lag_steps,from,to,shift_x,shift_y,shift_z,count", rows sorted by
/// lag, from, to, shift; 0-based sites. lag_steps < 0 means all lags; otherwise only that lag
/// (std::invalid_argument if absent).
void write_counts_csv(std::ostream& os, const CountsData& data, std::int64_t lag_steps = -1);

}  // namespace ionmsm
