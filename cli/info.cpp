// ionmsm info FILE.h5: human-readable summary of a counts file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/counts_file.hpp"
#include "ionmsm/version.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string num(double v) { return fmt("%.10g", v); }

std::string vec3(const Eigen::Vector3d& v) {
  return "(" + num(v[0]) + ", " + num(v[1]) + ", " + num(v[2]) + ")";
}

std::string pad(std::string s, std::size_t width, bool right = true) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

double angle_deg(const Eigen::Vector3d& u, const Eigen::Vector3d& v) {
  const double c = u.dot(v) / (u.norm() * v.norm());
  return std::acos(std::max(-1.0, std::min(1.0, c))) * 57.29577951308232;
}

void line(std::ostream& os, const char* key, const std::string& value) {
  os << pad(key, 16, false) << ": " << value << "\n";
}

/// Provenance, units, time and sampling.
void print_run(std::ostream& os, const std::string& path, const CountsData& d) {
  const bool physical = d.timestep_ps > 0.0;
  line(os, "file", path);
  line(os, "format",
       std::string(kCountsFormatTag) + " version " + std::to_string(kCountsFormatVersion));
  line(os, "ionmsm version", d.ionmsm_version.empty() ? "(unknown)" : d.ionmsm_version);
  line(os, "LAMMPS version", d.lammps_version.empty() ? "(unknown)" : d.lammps_version);
  line(os, "command", d.command.empty() ? "(unknown)" : d.command);
  line(os, "units", d.units.empty() ? "(unknown)" : d.units);
  line(os, "timestep", num(d.timestep) + (physical ? " (" + num(d.timestep_ps) + " ps)" : ""));
  line(os, "nevery",
       std::to_string(d.nevery) + " steps" +
           (physical ? " (" + num(d.timestep_ps * static_cast<double>(d.nevery)) + " ps)" : ""));
  if (d.n_samples > 0) {
    std::string s = std::to_string(d.first_step) + " to " + std::to_string(d.last_step);
    if (physical)
      s += " (" + num(d.timestep_ps * static_cast<double>(d.last_step - d.first_step)) + " ps)";
    line(os, "steps sampled", s);
  } else {
    line(os, "steps sampled", "none");
  }
  line(os, "n_samples", std::to_string(d.n_samples));
  line(os, "n_atoms", std::to_string(d.n_atoms));
}

/// The number of sites, with a label summary in order of first appearance (8 labels at most).
std::string site_summary(const CountsData& d) {
  std::string sites = std::to_string(d.nsites());
  if (d.site_labels.empty()) return sites;
  std::vector<std::pair<std::string, std::size_t>> groups;
  for (const auto& l : d.site_labels) {
    const std::string name = l.empty() ? "(no label)" : l;
    bool found = false;
    for (auto& g : groups)
      if (g.first == name) {
        ++g.second;
        found = true;
        break;
      }
    if (!found) {
      if (groups.size() >= 8) {
        groups.emplace_back("...", 0);
        break;
      }
      groups.emplace_back(name, 1);
    }
  }
  sites += " (";
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (i) sites += ", ";
    sites += groups[i].first == "..." ? std::string("...")
                                      : groups[i].first + ": " + std::to_string(groups[i].second);
  }
  return sites + ")";
}

void print_sites_and_box(std::ostream& os, const CountsData& d) {
  line(os, "sites", site_summary(d));
  std::size_t occupied = 0;
  for (auto o : d.occupancy) occupied += o > 0 ? 1 : 0;
  line(os, "occupied sites", std::to_string(occupied) + " of " + std::to_string(d.nsites()));
  const Eigen::Vector3d a = d.box_h.col(0), b = d.box_h.col(1), c = d.box_h.col(2);
  line(os, "box origin", vec3(d.box_origin));
  line(os, "box a", vec3(a) + "  |a| = " + num(a.norm()));
  line(os, "box b", vec3(b) + "  |b| = " + num(b.norm()));
  line(os, "box c", vec3(c) + "  |c| = " + num(c.norm()));
  line(os, "box angles", "alpha = " + fmt("%.4f", angle_deg(b, c)) + ", beta = " +
                             fmt("%.4f", angle_deg(a, c)) + ", gamma = " +
                             fmt("%.4f", angle_deg(a, b)) + " deg");
  line(os, "box volume", num(std::abs(d.box_h.determinant())));
}

/// How the counts were taken: history, per-atom state, assignment, moments, blocks.
void print_counting(std::ostream& os, const CountsData& d) {
  if (d.history) {
    std::string hs = d.history->name();
    if (d.history->mode == HistoryConfig::Mode::MultiTau)
      hs += " M = " + std::to_string(d.history->m);
    line(os, "history", hs);
  }
  if (d.doubles_per_atom > 0)
    line(os, "per-atom state", std::to_string(d.doubles_per_atom) + " doubles (" +
                                   std::to_string(8 * d.doubles_per_atom) + " bytes)");
  if (d.assign) {
    std::string as = assign_mode_name(*d.assign);
    if (*d.assign == AssignMode::Core) {
      std::uint64_t samples = 0;
      for (auto o : d.occupancy) samples += o;
      as += " R = " + num(d.core_radius) + ", outside every core: " +
            (samples ? fmt("%.4f", static_cast<double>(d.n_outside_core) /
                                       static_cast<double>(samples))
                     : std::string("-"));
    }
    line(os, "assign", as);
  }
  line(os, "MD moments", d.has_displacement ? "yes (MD site-projected MSD per lag)" : "no");
  line(os, "blocks", d.block_steps > 0 ? std::to_string(d.blocks.size()) + " of " +
                                             std::to_string(d.block_steps) +
                                             " steps (for bootstrap error bars)"
                                       : std::string("none"));
}

/// One row per lag: origins, counts, transitions and the fraction of site changes.
void print_lag_table(std::ostream& os, const CountsData& d) {
  const bool physical = d.timestep_ps > 0.0;
  const std::vector<std::string> head = {"lag_steps",    physical ? "lag_ps" : "lag_time",
                                         "n_origins",    "total_counts",
                                         "transitions",  "site_changes"};
  std::vector<std::vector<std::string>> table;
  for (const auto& lc : d.lags) {
    std::uint64_t total = 0, moved = 0;
    for (const auto& r : lc.rows) {
      total += r.count;
      if (r.from != r.to) moved += r.count;
    }
    const double lag_time = physical ? d.timestep_ps * static_cast<double>(lc.lag_steps)
                                     : d.timestep * static_cast<double>(lc.lag_steps);
    table.push_back({std::to_string(lc.lag_steps), num(lag_time), std::to_string(lc.n_origins),
                     std::to_string(total), std::to_string(lc.rows.size()),
                     total > 0 ? fmt("%.6f", static_cast<double>(moved) / static_cast<double>(total))
                               : std::string("-")});
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t j = 0; j < head.size(); ++j) {
    width[j] = head[j].size();
    for (const auto& row : table) width[j] = std::max(width[j], row[j].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    os << " ";
    for (std::size_t j = 0; j < row.size(); ++j) os << " " << pad(row[j], width[j]);
    os << "\n";
  };
  print_row(head);
  for (const auto& row : table) print_row(row);
  if (!physical)
    os << "  (lag_time in the units style's time unit: no conversion to ps for units '"
       << d.units << "')\n";
  os << "  (site_changes: fraction of counts with from != to)\n";
}

}  // namespace

int run_info(const std::vector<std::string>& args) {
  const ParsedArgs p = parse_args("info", args, {});
  require_positional("info", p, {"FILE.h5"});
  const std::string& path = p.positional[0];
  const CountsData d = read_counts_file(path);
  std::ostream& os = std::cout;
  print_run(os, path, d);
  print_sites_and_box(os, d);
  print_counting(os, d);
  line(os, "lags", std::to_string(d.lags.size()));
  if (!d.lags.empty()) print_lag_table(os, d);
  return kExitOk;
}

}  // namespace ionmsm::cli
