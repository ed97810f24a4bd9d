// The verb table and the small option parser shared by the verbs.
#include "verbs.hpp"

#include <cerrno>
#include <cstdlib>

namespace ionmsm::cli {

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> table = {
      {"info", "summarize a counts file",
       "usage: ionmsm info FILE.h5\n"
       "\n"
       "Prints a human-readable summary of a counts file written by fix msm: format version,\n"
       "provenance, units and timestep, sampling, box, sites and, for every lag, the lag time,\n"
       "the number of time origins, the total and distinct transition counts and the fraction\n"
       "of counts that change site (from != to).\n",
       run_info},
      {"export", "write the transition counts as canonical CSV",
       "usage: ionmsm export FILE.h5 [--lag-steps L]\n"
       "\n"
       "Writes the counts to standard output as CSV with the header\n"
       "  lag_steps,from,to,shift_x,shift_y,shift_z,count\n"
       "one row per (lag, from, to, shift), sorted, with 0-based site indices\n"
       "(docs/file-format.md).\n"
       "\n"
       "options:\n"
       "  --lag-steps L   only the lag of L timesteps (must be one of the file's lags)\n",
       run_export},
      {"verify", "check a counts file's checksums and consistency", kVerifyHelp, run_verify},
      {"analyze", "full MSM analysis: timescales, CK test, D, MSD, jump network", kAnalyzeHelp,
       run_analyze},
      {"sites", "find sites as peaks of an ion density (LAMMPS dump grid)", kSitesHelp, run_sites},
  };
  return table;
}

const Verb* find_verb(const std::string& name) {
  for (const Verb& v : verbs())
    if (name == v.name) return &v;
  return nullptr;
}

std::optional<std::string> ParsedArgs::value(const std::string& option) const {
  auto it = values.find(option);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

ParsedArgs parse_args(const std::string& verb, const std::vector<std::string>& args,
                      const std::vector<OptionSpec>& options) {
  ParsedArgs out;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const OptionSpec* spec = nullptr;
    for (const auto& o : options)
      if (o.name == name) spec = &o;
    if (!spec)
      throw UsageError("unknown option '" + name + "' for '" + verb + "' (see 'ionmsm " + verb +
                       " --help')");
    if (out.has(name)) throw UsageError(verb + ": option '" + name + "' given twice");
    if (!spec->takes_value) {
      if (eq != std::string::npos)
        throw UsageError(verb + ": option '" + name + "' does not take a value");
      out.values[name] = "";
    } else if (eq != std::string::npos) {
      out.values[name] = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) throw UsageError(verb + ": option '" + name + "' needs a value");
      out.values[name] = args[++i];
    }
  }
  return out;
}

void require_positional(const std::string& verb, const ParsedArgs& parsed,
                        const std::vector<std::string>& names) {
  const auto& p = parsed.positional;
  if (p.size() < names.size())
    throw UsageError(verb + ": missing argument " + names[p.size()] + " (see 'ionmsm " + verb +
                     " --help')");
  if (p.size() > names.size())
    throw UsageError(verb + ": unexpected argument '" + p[names.size()] + "' (see 'ionmsm " +
                     verb + " --help')");
}

std::int64_t parse_int(const std::string& verb, const std::string& option,
                       const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || text[0] == ' ')
    throw UsageError(verb + ": " + option + " expects an integer, got '" + text + "'");
  return static_cast<std::int64_t>(v);
}

}  // namespace ionmsm::cli
