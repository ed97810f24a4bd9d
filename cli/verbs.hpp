#pragma once
// The ionmsm command-line tool: verb table and helpers shared by the verbs.
//
// Adding a verb: write cli/VERB.cpp with `int run_VERB(const std::vector<std::string>& args)`,
// declare it below and add one line to the table in cli/verbs.cpp. The dispatcher (main.cpp)
// handles --help for every verb and turns exceptions into one "ionmsm: error: ..." line:
// UsageError -> exit 2, any other std::exception -> exit 1.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ionmsm::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitData = 1;   ///< file or data problem
inline constexpr int kExitUsage = 2;  ///< bad command line

/// Bad command line (unknown option, missing argument, malformed value): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A verb's entry point receives the arguments after the verb name ("--help" never reaches it).
using VerbFunction = int (*)(const std::vector<std::string>& args);

struct Verb {
  const char* name;
  const char* summary;  ///< one line for "ionmsm --help"
  const char* help;     ///< full text for "ionmsm VERB --help" (starts with the usage line)
  VerbFunction run;
};

/// All verbs, in the order "ionmsm --help" lists them.
const std::vector<Verb>& verbs();
const Verb* find_verb(const std::string& name);

// ----------------------------------------------------------------- option parsing for verbs

struct OptionSpec {
  std::string name;          ///< with the dashes: "--lag-steps"
  bool takes_value = false;  ///< "--name VALUE" or "--name=VALUE"
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  ///< options given, value "" for flags

  bool has(const std::string& option) const { return values.count(option) != 0; }
  std::optional<std::string> value(const std::string& option) const;
};

/// Parses `args` against `options`; "--" ends options. Throws UsageError naming the verb for an
/// unknown option or a missing value.
ParsedArgs parse_args(const std::string& verb, const std::vector<std::string>& args,
                      const std::vector<OptionSpec>& options);

/// Throws UsageError unless exactly `names.size()` positional arguments were given.
void require_positional(const std::string& verb, const ParsedArgs& parsed,
                        const std::vector<std::string>& names);

/// Parses a whole string as a base-10 integer; UsageError "VERB: OPTION expects an integer".
std::int64_t parse_int(const std::string& verb, const std::string& option,
                       const std::string& text);

// ----------------------------------------------------------------- verbs
int run_info(const std::vector<std::string>& args);
int run_export(const std::vector<std::string>& args);
int run_analyze(const std::vector<std::string>& args);
extern const char kAnalyzeHelp[];  ///< defined in analyze.cpp
int run_verify(const std::vector<std::string>& args);
extern const char kVerifyHelp[];  ///< defined in verify.cpp
int run_sites(const std::vector<std::string>& args);
extern const char kSitesHelp[];  ///< defined in sites.cpp

}  // namespace ionmsm::cli
