// Units of the LAMMPS units styles: see units.hpp.
#include "ionmsm/units.hpp"

#include <iterator>
#include <stdexcept>

namespace ionmsm {

namespace {

// https://docs.lammps.org/units.html
constexpr UnitsStyle kStyles[] = {
    {"metal", "Angstrom", "ps", 1.0},       {"real", "Angstrom", "fs", 1e-3},
    {"electron", "Bohr", "fs", 1e-3},       {"si", "m", "s", 1e12},
    {"cgs", "cm", "s", 1e12},               {"micro", "micrometer", "microsecond", 1e6},
    {"nano", "nanometer", "ns", 1e3},       {"lj", "sigma", "tau", 0.0},
};

}  // namespace

const UnitsStyle* find_units_style(const std::string& name) {
  for (const auto& s : kStyles)
    if (name == s.name) return &s;
  return nullptr;
}

double time_unit_in_ps(const std::string& units_style) {
  if (const UnitsStyle* s = find_units_style(units_style)) return s->time_in_ps;
  throw std::invalid_argument("unknown LAMMPS units style '" + units_style +
                              "' (expected lj, real, metal, si, cgs, electron, micro or nano)");
}

std::string length_unit_name(const std::string& units_style) {
  const UnitsStyle* s = find_units_style(units_style);
  return s ? s->length : "length unit of the counts file";
}

ReportUnits report_units(const std::string& units_style, double timestep_ps) {
  ReportUnits u;
  u.length = length_unit_name(units_style);
  u.time_is_physical = timestep_ps > 0.0;
  u.time = u.time_is_physical ? "ps" : "timesteps";
  u.per_time = u.time_is_physical ? "ps" : "timestep";
  u.time_per_step = u.time_is_physical ? timestep_ps : 1.0;
  return u;
}

}  // namespace ionmsm
