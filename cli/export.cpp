// ionmsm export FILE.h5 [--lag-steps L]: the counts as canonical CSV on standard output.
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counts_file.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

int run_export(const std::vector<std::string>& args) {
  const ParsedArgs p = parse_args("export", args, {{"--lag-steps", true}});
  require_positional("export", p, {"FILE.h5"});
  std::int64_t lag = -1;
  if (auto v = p.value("--lag-steps")) {
    lag = parse_int("export", "--lag-steps", *v);
    if (lag <= 0) throw UsageError("export: --lag-steps must be a positive integer, got '" + *v + "'");
  }
  const std::string& path = p.positional[0];
  const CountsData data = read_counts_file(path);
  if (lag > 0 && data.find_lag(lag) < 0) {
    std::string have;
    for (const auto& lc : data.lags) have += (have.empty() ? "" : ", ") + std::to_string(lc.lag_steps);
    throw std::runtime_error("lag " + std::to_string(lag) + " steps is not in '" + path +
                             "' (lags in steps: " + (have.empty() ? "none" : have) + ")");
  }
  write_counts_csv(std::cout, data, lag);
  return kExitOk;
}

}  // namespace ionmsm::cli
