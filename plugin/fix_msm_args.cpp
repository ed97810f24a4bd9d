/* ----------------------------------------------------------------------
   ionmsm: fix msm -- the fix command's arguments, parsed into an ionmsm::CountingConfig
   (src/ionmsm/counting_config.hpp), which checks the values.

   fix ID group msm Nevery sites group|file ARG lags L1 L2 ... file OUT.h5 [keyword value ...]
   keywords: every Nout | history full|multitau M | assign nearest|core R | append yes|no |
             overwrite yes|no | blocks Nb
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "error.h"

#include "ionmsm/geometry.hpp"
#include "ionmsm/site_assigner.hpp"

#include <algorithm>
#include <exception>
#include <optional>

using namespace LAMMPS_NS;

namespace {
const char *const kUsage =
    "fix ID group-ID msm Nevery sites group|file ARG lags L1 L2 ... file OUT.h5 [every Nout] "
    "[history full|multitau M] [assign nearest|core R] [append yes|no] [overwrite yes|no] "
    "[blocks Nb]";

// KEYWORD MODE: the mode the value names (from_name: the enum's name table); `expected`
// lists the choices for the error messages
template <typename E>
E mode_value(Error *error, int iarg, int narg, char **arg,
             std::optional<E> (*from_name)(const std::string &), const char *expected)
{
  if (iarg + 1 >= narg)
    error->all(FLERR, "Fix msm keyword '{}' needs a value: {}", arg[iarg], expected);
  const std::optional<E> mode = from_name(arg[iarg + 1]);
  if (!mode)
    error->all(FLERR, "Fix msm keyword '{}' expects {}, got '{}'", arg[iarg], expected,
               arg[iarg + 1]);
  return *mode;
}
}    // namespace

void FixMSM::parse_args(int narg, char **arg)
{
  if (narg < 4) error->all(FLERR, "Illegal fix msm command: missing Nevery; usage: {}", kUsage);
  config.nevery_steps = utils::bnumeric(FLERR, arg[3], false, lmp);
  if (config.nevery_steps <= 0)
    error->all(FLERR, "Fix msm Nevery must be a positive integer, got {}", arg[3]);

  bool have_sites = false, have_file = false;
  int iarg = 4;
  while (iarg < narg) {
    const std::string kw = arg[iarg];
    if (kw == "sites") {
      iarg = parse_sites(iarg, narg, arg);
      have_sites = true;
    } else if (kw == "lags") {
      iarg = parse_lags(iarg, narg, arg);
    } else if (kw == "file") {
      if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword 'file' needs an output file name");
      config.outfile = arg[iarg + 1];
      have_file = true;
      iarg += 2;
    } else if (kw == "every") {
      config.every_steps = parse_steps(iarg, narg, arg, "every", "a value Nout");
      iarg += 2;
    } else if (kw == "history") {
      iarg = parse_history(iarg, narg, arg);
    } else if (kw == "assign") {
      iarg = parse_assign(iarg, narg, arg);
    } else if (kw == "blocks") {
      config.block_steps = parse_steps(iarg, narg, arg, "blocks", "a block length Nb (timesteps)");
      iarg += 2;
    } else if (kw == "overwrite") {
      iarg = parse_yes_no(iarg, narg, arg, config.overwrite);
    } else if (kw == "append") {
      iarg = parse_yes_no(iarg, narg, arg, config.append);
    } else {
      error->all(FLERR, "Unknown fix msm keyword '{}'; usage: {}", kw, kUsage);
    }
  }
  if (!have_sites) error->all(FLERR, "Fix msm needs the 'sites' keyword; usage: {}", kUsage);
  if (config.lag_steps.empty())
    error->all(FLERR, "Fix msm needs at least one lag ('lags L1 ...'); usage: {}", kUsage);
  if (!have_file)
    error->all(FLERR, "Fix msm needs an output file ('file OUT.h5'); usage: {}", kUsage);
  try {
    config.validate();
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm {}", e.what());
  }
  std::sort(config.lag_steps.begin(), config.lag_steps.end());
}

// sites group|file ARG
int FixMSM::parse_sites(int iarg, int narg, char **arg)
{
  if (iarg + 2 >= narg)
    error->all(FLERR, "Fix msm keyword 'sites' needs two values: 'group GROUP-ID' or 'file FILE'");
  const auto source = ionmsm::sites_source_from_name(arg[iarg + 1]);
  if (!source)
    error->all(FLERR, "Fix msm keyword 'sites' expects 'group' or 'file', got '{}'", arg[iarg + 1]);
  config.sites = *source;
  config.sites_arg = arg[iarg + 2];
  return iarg + 3;
}

// lags L1 L2 ...: every integer that follows (values are checked by CountingConfig::validate)
int FixMSM::parse_lags(int iarg, int narg, char **arg)
{
  ++iarg;
  const std::size_t before = config.lag_steps.size();
  while (iarg < narg && utils::is_integer(arg[iarg]))
    config.lag_steps.push_back(utils::bnumeric(FLERR, arg[iarg++], false, lmp));
  if (iarg < narg && config.lag_steps.size() == before)
    error->all(FLERR, "Fix msm keyword 'lags' expects positive integers, got '{}'", arg[iarg]);
  return iarg;
}

// every Nout, blocks Nb: a positive number of timesteps
bigint FixMSM::parse_steps(int iarg, int narg, char **arg, const char *keyword, const char *what)
{
  if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword '{}' needs {}", keyword, what);
  if (!utils::is_integer(arg[iarg + 1]))
    error->all(FLERR, "Fix msm keyword '{}' expects a positive integer number of timesteps, got "
               "'{}'", keyword, arg[iarg + 1]);
  const bigint steps = utils::bnumeric(FLERR, arg[iarg + 1], false, lmp);
  if (steps <= 0) {
    if (std::string(keyword) == "every")
      error->all(FLERR, "Fix msm every Nout must be positive, got {}", steps);
    error->all(FLERR, "Fix msm blocks Nb must be a positive number of timesteps, got {}", steps);
  }
  return steps;
}

// history full | history multitau M
int FixMSM::parse_history(int iarg, int narg, char **arg)
{
  const auto mode = mode_value(error, iarg, narg, arg, ionmsm::history_mode_from_name,
                               "'full' or 'multitau M'");
  if (mode == ionmsm::HistoryConfig::Mode::Full) {
    config.history = ionmsm::HistoryConfig::full();
    return iarg + 2;
  }
  if (iarg + 2 >= narg || !utils::is_integer(arg[iarg + 2]))
    error->all(FLERR, "Fix msm keyword 'history multitau' needs a positive integer M "
               "(entries per level), got '{}'", iarg + 2 < narg ? arg[iarg + 2] : "");
  const bigint m = utils::bnumeric(FLERR, arg[iarg + 2], false, lmp);
  config.history = ionmsm::HistoryConfig::multitau(m);
  return iarg + 3;
}

// assign nearest | assign core R
int FixMSM::parse_assign(int iarg, int narg, char **arg)
{
  config.assign = mode_value(error, iarg, narg, arg, ionmsm::assign_mode_from_name,
                             "'nearest' or 'core R'");
  config.core_radius = 0.0;
  if (config.assign == ionmsm::AssignMode::Nearest) return iarg + 2;
  if (iarg + 2 >= narg || !utils::is_double(arg[iarg + 2]))
    error->all(FLERR, "Fix msm keyword 'assign core' needs a core radius R (a number), got '{}'",
               iarg + 2 < narg ? arg[iarg + 2] : "");
  config.core_radius = utils::numeric(FLERR, arg[iarg + 2], false, lmp);
  return iarg + 3;
}

// append yes|no, overwrite yes|no
int FixMSM::parse_yes_no(int iarg, int narg, char **arg, bool &value)
{
  const std::string kw = arg[iarg];
  if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword '{}' needs a value: yes or no", kw);
  const std::string v = arg[iarg + 1];
  if (v != "yes" && v != "no")
    error->all(FLERR, "Fix msm keyword '{}' expects 'yes' or 'no', got '{}'", kw, v);
  value = v == "yes";
  return iarg + 2;
}

/* ----------------------------------------------------------------------
   assign core: the radius must leave the cores disjoint (needs the sites)
------------------------------------------------------------------------- */

void FixMSM::check_core_radius()
{
  if (config.assign != ionmsm::AssignMode::Core) return;
  const double half = ionmsm::max_core_radius(*locator);
  if (!(config.core_radius < half))
    error->all(FLERR, "Fix msm assign core radius {} must be less than half the minimum site "
               "separation: {} / 2 = {}", config.core_radius, 2.0 * half, half);
}
