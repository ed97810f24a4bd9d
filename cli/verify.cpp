// ionmsm verify FILE.h5: checksums and consistency of a counts file, a one-line verdict, exit 0/1.
#include <iostream>
#include <string>
#include <vector>

#include "ionmsm/counts_verify.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

const char kVerifyHelp[] =
    "usage: ionmsm verify FILE.h5\n"
    "\n"
    "Reads every dataset of a counts file in full, so that HDF5 checks the Fletcher-32\n"
    "checksum of every chunk and of the file's metadata, then reads the contents with every\n"
    "consistency rule of the format (row order, totals, blocks summing to the totals, ...).\n"
    "Prints one line: 'FILE: OK ...' and exits 0, or 'FILE: DAMAGED: ...' / 'FILE: BAD: ...'\n"
    "and exits 1. Files written before ionmsm stored checksums are checked for consistency\n"
    "only, and the verdict says so.\n";

int run_verify(const std::vector<std::string>& args) {
  const ParsedArgs p = parse_args("verify", args, {});
  require_positional("verify", p, {"FILE.h5"});
  const std::string& path = p.positional[0];
  CountsFileCheck check;
  try {
    check = verify_counts_file(path);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    const bool damaged = what.find("damaged") != std::string::npos;
    std::cout << path << ": " << (damaged ? "DAMAGED: " : "BAD: ") << what << "\n";
    return kExitData;
  }
  std::uint64_t counts = 0;
  for (const auto& lc : check.data.lags) counts += lc.total();
  const std::size_t nonempty = check.datasets - check.empty;
  std::cout << path << ": OK: " << check.data.n_samples << " samples, "
            << check.data.lags.size() << " lags, " << counts << " counts, "
            << check.data.blocks.size() << " blocks; consistency checks pass; ";
  if (check.with_checksum == nonempty)
    std::cout << "all " << nonempty << " non-empty datasets carry Fletcher-32 checksums, all "
              << "match\n";
  else if (check.with_checksum == 0)
    std::cout << "no checksums (written by an older ionmsm): a changed count would go unnoticed\n";
  else
    std::cout << check.with_checksum << " of " << nonempty << " non-empty datasets carry "
              << "checksums, all match\n";
  return kExitOk;
}

}  // namespace ionmsm::cli
