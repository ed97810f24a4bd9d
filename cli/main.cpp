// ionmsm: command-line tool for counts files written by LAMMPS fix msm.
// Dispatches to the verbs listed in verbs.cpp; see verbs.hpp for how to add one.
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "ionmsm/version.hpp"
#include "verbs.hpp"

namespace {

using namespace ionmsm::cli;

void print_help(std::ostream& os) {
  os << "usage: ionmsm VERB [ARGS...]\n"
        "       ionmsm VERB --help\n"
        "       ionmsm --help | --version\n"
        "\n"
        "Markov state models of ion hopping from counts files written by LAMMPS fix msm.\n"
        "\n"
        "verbs:\n";
  std::size_t width = 0;
  for (const Verb& v : verbs()) width = std::max(width, std::string(v.name).size());
  for (const Verb& v : verbs()) {
    std::string name = v.name;
    name.resize(width, ' ');
    os << "  " << name << "   " << v.summary << "\n";
  }
  os << "\nFile formats: docs/file-format.md\n";
}

// Set by CMakeLists.txt: the LAMMPS the plugin of the same build directory was compiled against.
#ifndef IONMSM_BUILT_AGAINST
#define IONMSM_BUILT_AGAINST "unknown LAMMPS"
#endif

void print_version(std::ostream& os) {
  os << "ionmsm " << ionmsm::kVersion << "\n"
     << "plugin built against: " << IONMSM_BUILT_AGAINST << "\n"
     << "counts file format: " << ionmsm::kCountsFormatTag << " version "
     << ionmsm::kCountsFormatVersion << "\n";
}

int error(const std::string& message, int code) {
  std::cout.flush();
  std::cerr << "ionmsm: error: " << message << std::endl;
  return code;
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int dispatch(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UsageError("no verb given (see 'ionmsm --help')");
  const std::string& first = argv[0];
  if (first == "--help" || first == "-h") {
    print_help(std::cout);
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    print_version(std::cout);
    return kExitOk;
  }
  if (first == "help") {
    if (argv.size() == 1) {
      print_help(std::cout);
      return kExitOk;
    }
    const Verb* v = find_verb(argv[1]);
    if (!v) throw UsageError("unknown verb '" + argv[1] + "' (see 'ionmsm --help')");
    std::cout << v->help;
    return kExitOk;
  }
  if (!first.empty() && first[0] == '-')
    throw UsageError("unknown option '" + first + "' (see 'ionmsm --help')");
  const Verb* v = find_verb(first);
  if (!v) throw UsageError("unknown verb '" + first + "' (see 'ionmsm --help')");
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (wants_help(rest)) {
    std::cout << v->help;
    return kExitOk;
  }
  return v->run(rest);
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  const std::vector<std::string> args(argv + 1, argv + argc);
  int code = kExitOk;
  try {
    code = dispatch(args);
  } catch (const UsageError& e) {
    return error(e.what(), kExitUsage);
  } catch (const std::bad_alloc&) {
    return error("out of memory", kExitData);
  } catch (const std::exception& e) {
    return error(e.what(), kExitData);
  }
  std::cout.flush();
  if (!std::cout) return error("cannot write to standard output", kExitData);
  return code;
}
