#pragma once
// Units of the LAMMPS units styles as the counts file stores them: the names of the length and
// time units and the time unit in picoseconds. The counts file keeps lengths in the style's
// length unit and times in timesteps; `ionmsm analyze` reports times in ps when the style has
// a physical time (timestep_ps > 0) and in timesteps otherwise (lj).
#include <string>

namespace ionmsm {

struct UnitsStyle {
  const char* name;        ///< LAMMPS units style ("metal", ...)
  const char* length;      ///< its length unit ("Angstrom", ...)
  const char* time;        ///< its time unit ("ps", ...)
  double time_in_ps;       ///< the time unit in ps (0: reduced units, no physical time)
};

/// The style called `name`, or nullptr for an unknown style.
const UnitsStyle* find_units_style(const std::string& name);

/// The time unit of a units style in picoseconds (metal 1, real 1e-3, ...; 0 for lj).
/// Throws std::invalid_argument naming the style and the known ones for an unknown style.
double time_unit_in_ps(const std::string& units_style);

/// Name of the length unit of a units style; a generic phrase for an unknown style.
std::string length_unit_name(const std::string& units_style);

/// The units in which `ionmsm analyze` reports a counts file's quantities.
struct ReportUnits {
  std::string length;          ///< length_unit_name of the file's style
  bool time_is_physical = false;  ///< the file has timestep_ps > 0
  std::string time;            ///< "ps", or "timesteps" without a physical time
  std::string per_time;        ///< denominator of rates: "ps", or "timestep"
  double time_per_step = 1.0;  ///< timestep_ps, or 1 (one timestep)
};
ReportUnits report_units(const std::string& units_style, double timestep_ps);

}  // namespace ionmsm
