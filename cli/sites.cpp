// `ionmsm sites`: sites of a disordered host as the peaks of the ion density accumulated by
// LAMMPS (fix ave/grid + dump grid). Orchestration only: reading, discovery and the sites file
// are in the core (density_grid.*, site_discovery.*, sites_file.*); the picture is drawn by
// cli/plot_sites.py.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "analyze_util.hpp"
#include "ionmsm/density_grid.hpp"
#include "ionmsm/site_discovery.hpp"
#include "ionmsm/sites_file.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

extern const char kSitesHelp[] =
    "usage: ionmsm sites GRID --out SITES.txt [--min-separation R] [--min-occupancy X]\n"
    "                    [--min-contrast C] [--seed FILE] [--plot FILE.png | --no-plot]\n"
    "\n"
    "Finds sites as the maxima of the ion density in GRID, a LAMMPS 'dump grid' text file with\n"
    "one density column, as written by\n"
    "  fix  dens MOBILE ave/grid 10 100 1000 Nx Ny Nz density/number ave running\n"
    "  dump dg all grid 1000 dens.grid f_dens:grid:data\n"
    "  dump_modify dg sort id\n"
    "(the last snapshot is used; periodic, orthogonal or triclinic box). Maxima are found with\n"
    "periodic boundaries and placed by a quadratic fit of log(density); every cell belongs to\n"
    "the basin of the maximum its steepest ascent reaches. Maxima closer than R to a higher\n"
    "one are merged into it; sites whose basins hold fewer than X ions on average, or whose\n"
    "peak density is below C times the mean density, are dropped.\n"
    "Writes SITES.txt (fractional coordinates, label, '# occupancy N ...' per site: the mean\n"
    "number of ions in the site's basins) for 'fix msm ... sites file SITES.txt', and a\n"
    "picture of the density projected on two cell axes with the sites marked.\n"
    "\n"
    "options:\n"
    "  --out FILE          the sites file to write (required)\n"
    "  --min-separation R  merge maxima closer than R (length units); default: twice the\n"
    "                      largest grid spacing\n"
    "  --min-occupancy X   drop found sites holding fewer than X ions on average (default 0.05)\n"
    "  --min-contrast C    drop found sites whose peak density is below C times the mean\n"
    "                      density of the grid (default 5): sampling noise in weakly\n"
    "                      structured regions\n"
    "  --seed FILE         known sites (a sites file, docs/file-format.md): kept first, with\n"
    "                      their labels; only maxima farther than R from them become new sites\n"
    "  --plot FILE         the picture (default: the sites file's name with .png)\n"
    "  --no-plot           no picture\n"
    "\n"
    "environment:\n"
    "  IONMSM_SITES_PLOT_SCRIPT  path of plot_sites.py (default: the source tree's cli/)\n"
    "  IONMSM_PYTHON             interpreter for the plot script (default /usr/bin/python3)\n"
    "\n"
    "See docs/site-discovery.md for when the sites are trustworthy.\n";

namespace {

double parse_nonnegative(const std::string& option, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v) ||
      v < 0.0)
    throw UsageError("sites: " + option + " expects a number >= 0, got '" + text + "'");
  return v;
}

std::string fmt(double v, const char* f = "%.6g") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The sites file's name with its extension replaced by .png.
std::string default_plot_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".png");
  return p.string();
}

// Text handed to plot_sites.py: the density summed along each cell axis and the sites.
std::string projection_text(const DensityGrid& g, const SiteDiscovery& r, const std::string& title) {
  std::ostringstream os;
  os << "# ionmsm-sites-projection 1\n" << "title " << title << "\n";
  const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  for (const auto& pr : pairs) {
    const int a = pr[0], b = pr[1], c = 3 - pr[0] - pr[1];
    std::vector<double> sum(static_cast<std::size_t>(g.n[a]) * g.n[b], 0.0);
    for (std::size_t i = 0; i < g.size(); ++i) {
      const std::array<int, 3> cell = g.cell(i);
      sum[static_cast<std::size_t>(cell[b]) * g.n[a] + cell[a]] += g.density[i];
    }
    os << "projection " << a << " " << b << " " << g.n[a] << " " << g.n[b] << "\n";
    for (int j = 0; j < g.n[b]; ++j) {
      for (int i = 0; i < g.n[a]; ++i)
        os << (i ? " " : "") << fmt(sum[static_cast<std::size_t>(j) * g.n[a] + i] / g.n[c]);
      os << "\n";
    }
  }
  os << "sites " << r.sites.size() << "\n";
  for (const auto& s : r.sites)
    os << fmt(s.fractional[0], "%.9g") << " " << fmt(s.fractional[1], "%.9g") << " "
       << fmt(s.fractional[2], "%.9g") << " " << fmt(s.occupancy) << " " << (s.seed >= 0) << "\n";
  return os.str();
}

std::string plot(const DensityGrid& g, const SiteDiscovery& r, const std::string& title,
                 const std::string& png) {
  const char* script = "";
#ifdef IONMSM_SITES_PLOT_SCRIPT
  script = IONMSM_SITES_PLOT_SCRIPT;
#endif
  std::filesystem::path dir = std::filesystem::path(png).parent_path();
  const std::string data =
      (dir / ("." + std::filesystem::path(png).filename().string() + ".data.tmp")).string();
  analyze::write_file_atomic(data, projection_text(g, r, title));
  const analyze::PlotRun run =
      analyze::run_configured_plot_script(script, "IONMSM_SITES_PLOT_SCRIPT", data, png);
  std::error_code ec;
  std::filesystem::remove(data, ec);
  return run.ok ? std::string() : run.message;
}

SiteDiscoveryOptions discovery_options(const ParsedArgs& p, const DensityGrid& g,
                                       const SitesFile& seeds) {
  SiteDiscoveryOptions opt;
  double spacing = 0.0;  // the largest distance between grid planes
  for (int k = 0; k < 3; ++k) spacing = std::max(spacing, g.box.face_distance(k) / g.n[k]);
  opt.min_separation = p.has("--min-separation")
                           ? parse_nonnegative("--min-separation", *p.value("--min-separation"))
                           : 2.0 * spacing;
  opt.min_occupancy = p.has("--min-occupancy")
                          ? parse_nonnegative("--min-occupancy", *p.value("--min-occupancy"))
                          : 0.05;
  opt.min_contrast = p.has("--min-contrast")
                         ? parse_nonnegative("--min-contrast", *p.value("--min-contrast"))
                         : 5.0;
  for (const auto& x : seeds.coords)
    opt.seeds_fractional.push_back(seeds.fractional ? x : g.box.to_fractional(x));
  return opt;
}

void write_sites(const std::string& out, const std::string& grid_path, const DensityGrid& g,
                 const SiteDiscoveryOptions& opt, const SiteDiscovery& r, const SitesFile& seeds) {
  SitesFile sf;
  sf.fractional = true;
  std::vector<std::string> comments;
  for (std::size_t i = 0; i < r.sites.size(); ++i) {
    const DiscoveredSite& s = r.sites[i];
    sf.coords.push_back(s.fractional);
    std::string label = "s" + std::to_string(i);
    if (s.seed >= 0) {
      const std::string& l = seeds.labels[static_cast<std::size_t>(s.seed)];
      label = l.empty() ? "seed" + std::to_string(s.seed) : l;
    }
    sf.labels.push_back(label);
    comments.push_back("occupancy " + fmt(s.occupancy) + " contrast " + fmt(s.contrast, "%.4g") +
                       " maxima " + std::to_string(s.n_maxima) + (s.seed >= 0 ? " seed" : ""));
  }
  const std::vector<std::string> header = {
      "written by ionmsm sites from " + grid_path + " (timestep " + std::to_string(g.timestep) +
          ", grid " + std::to_string(g.n[0]) + "x" + std::to_string(g.n[1]) + "x" +
          std::to_string(g.n[2]) + ", column " + g.column + ")",
      "min_separation " + fmt(opt.min_separation) + " min_occupancy " +
          fmt(opt.min_occupancy) + " min_contrast " + fmt(opt.min_contrast) + " seeds " +
          std::to_string(opt.seeds_fractional.size()),
      "ions on the grid " + fmt(r.total_number) + "; in these sites' basins " +
          fmt(r.kept_occupancy) +
          "; occupancy = mean number of ions in the site's basins, contrast = peak density / "
          "mean density " + fmt(r.mean_density)};
  write_sites_file(out, sf, header, comments);
}

void print_summary(std::ostream& os, const std::string& grid_path, const std::string& out,
                   const DensityGrid& g, const SiteDiscoveryOptions& opt, const SiteDiscovery& r) {
  double weakest_kept = INFINITY, strongest_dropped = 0.0;
  std::vector<Eigen::Vector3d> positions;
  for (const auto& s : r.sites) {
    positions.push_back(s.fractional);
    if (s.seed < 0) weakest_kept = std::min(weakest_kept, s.contrast);
  }
  for (const auto& s : r.dropped) strongest_dropped = std::max(strongest_dropped, s.contrast);
  const std::size_t n_seeds = opt.seeds_fractional.size();
  os << "ionmsm sites: " << grid_path << " -> " << out << "\n"
     << "  grid " << g.n[0] << " x " << g.n[1] << " x " << g.n[2] << " (timestep " << g.timestep
     << ", the last of " << g.n_snapshots << " snapshot(s)), " << fmt(r.total_number)
     << " ions on average\n"
     << "  " << r.n_maxima << " maxima -> " << r.sites.size() << " sites (" << n_seeds
     << " seeds, " << r.sites.size() - n_seeds << " found); merged within "
     << fmt(opt.min_separation) << "; dropped " << r.dropped.size() << " below "
     << fmt(opt.min_occupancy) << " ions or contrast " << fmt(opt.min_contrast) << " ("
     << fmt(r.dropped_occupancy) << " ions in all)\n"
     << "  peak contrast: weakest kept "
     << (std::isfinite(weakest_kept) ? fmt(weakest_kept, "%.3g") : std::string("none"))
     << ", strongest dropped "
     << (r.dropped.empty() ? std::string("none") : fmt(strongest_dropped, "%.3g")) << "\n"
     << "  ions in the sites' basins: " << fmt(r.kept_occupancy) << " of "
     << fmt(r.total_number) << " ("
     << fmt(r.total_number > 0 ? 100.0 * r.kept_occupancy / r.total_number : 0.0, "%.1f")
     << " %)\n";
  const double core = 0.5 * opt.min_separation;
  if (core > 0.0)
    os << "  density within " << fmt(core) << " of a site (fix msm assign core " << fmt(core)
       << "): " << fmt(100.0 * fraction_within(g, positions, core), "%.1f") << " %\n";
  for (const auto& s : r.sites)
    if (s.seed >= 0 && s.n_maxima == 0)
      os << "  note: seed " << s.seed << " has no density maximum within "
         << fmt(opt.min_separation) << "\n";
}

}  // namespace

int run_sites(const std::vector<std::string>& args) {
  const ParsedArgs p = parse_args("sites", args,
                                  {{"--out", true},
                                   {"--min-separation", true},
                                   {"--min-occupancy", true},
                                   {"--min-contrast", true},
                                   {"--seed", true},
                                   {"--plot", true},
                                   {"--no-plot", false}});
  require_positional("sites", p, {"GRID"});
  if (!p.has("--out")) throw UsageError("sites: --out SITES.txt is required");
  if (p.has("--plot") && p.has("--no-plot"))
    throw UsageError("sites: --plot and --no-plot exclude each other");
  const std::string grid_path = p.positional[0];
  const std::string out = *p.value("--out");

  const DensityGrid g = read_dump_grid(grid_path);
  const SitesFile seeds = p.has("--seed") ? read_sites_file(*p.value("--seed")) : SitesFile{};
  const SiteDiscoveryOptions opt = discovery_options(p, g, seeds);
  const SiteDiscovery r = discover_sites(g, opt);
  if (r.sites.empty())
    throw std::runtime_error(grid_path + ": no site passes --min-occupancy " +
                             fmt(opt.min_occupancy) + " and --min-contrast " +
                             fmt(opt.min_contrast) + " (" + std::to_string(r.n_maxima) +
                             " maxima; lower them or accumulate longer)");
  write_sites(out, grid_path, g, opt, r, seeds);
  print_summary(std::cout, grid_path, out, g, opt, r);
  if (!p.has("--no-plot")) {
    const std::string png = p.has("--plot") ? *p.value("--plot") : default_plot_path(out);
    const std::string why = plot(g, r, grid_path, png);
    if (why.empty())
      std::cout << "  picture: " << png << "\n";
    else
      std::cerr << "ionmsm: warning: no picture: " << why << "; " << out << " was written\n";
  }
  return kExitOk;
}

}  // namespace ionmsm::cli
