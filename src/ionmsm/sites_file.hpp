#pragma once
// Reading a sites text file (format in docs/file-format.md):
//
//   # ionmsm-sites 1                  <- optional tag line (comments start with #)
//   coordinates fractional            <- or "coordinates cartesian" (default: cartesian)
//   0.0 0.25 0.5  [label]             <- one site per line: three numbers, optional label
//
// Cartesian coordinates are in the simulation's length unit and are converted to fractional
// coordinates with the box in force when the fix is set up.
#include <Eigen/Dense>
#include <cstdint>
#include <string>
#include <vector>

namespace ionmsm {

struct SitesFile {
  bool fractional = false;
  std::vector<Eigen::Vector3d> coords;
  std::vector<std::string> labels;  ///< empty string where a line had no label
};

/// Parses a sites file. Throws std::invalid_argument with "FILE:LINE: what was expected" on a
/// malformed line, a wrong tag version, an unknown keyword or no sites at all.
SitesFile read_sites_file(const std::string& path);
/// Same from text already in memory (name is used in messages).
SitesFile parse_sites_text(const std::string& text, const std::string& name);

/// Sanity check of a Cartesian sites file: "" when the sites look plausible, else a warning
/// (naming `name`). Every site inside [-1, 1]^3 while the box's shortest face distance is at
/// least 4 length units looks like fractional coordinates read as Cartesian ones (a missing
/// "coordinates fractional" line).
std::string check_cartesian_sites(const std::vector<Eigen::Vector3d>& cartesian,
                                  double min_face_distance, const std::string& name);

/// Sanity check of the occupancy after the first samples: "" when plausible, else a warning.
/// Atoms sit on distinct sites in any sensible start, so fewer than half of min(n_atoms,
/// nsites) sites occupied means most atoms crowd onto a few sites: misplaced sites.
std::string check_early_occupancy(const std::vector<std::uint64_t>& occupancy,
                                  std::int64_t n_atoms);
/// The text of a sites file: the tag line "# ionmsm-sites 1", one "# " line per header comment,
/// "coordinates fractional|cartesian", then one line per site "x y z [label] [# comment]".
/// Coordinates are written with 17 significant digits, so parse_sites_text reads them back
/// exactly. `site_comments` is empty or has one entry per site ("" for none). Throws
/// std::invalid_argument for a label containing whitespace or '#', a comment containing a line break, mismatched sizes, a
/// non-finite coordinate or no sites.
std::string format_sites_text(const SitesFile& sites,
                              const std::vector<std::string>& header_comments = {},
                              const std::vector<std::string>& site_comments = {});
/// Writes format_sites_text(...) to `path` atomically (a temporary in the same directory, then
/// rename), so a reader never sees a partial file. Throws std::invalid_argument naming the path.
void write_sites_file(const std::string& path, const SitesFile& sites,
                      const std::vector<std::string>& header_comments = {},
                      const std::vector<std::string>& site_comments = {});

}  // namespace ionmsm
