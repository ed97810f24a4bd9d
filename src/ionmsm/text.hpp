#pragma once
// Number-to-text helpers for error messages of the core (one home, so that every message
// prints numbers the same way), a whitespace splitter and a whole-file reader for the text
// formats.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ionmsm::text {

/// `v` as text with 17 significant digits (a double reads back exactly).
template <typename T>
std::string str(const T& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

/// The arguments streamed one after another, numbers with 17 significant digits.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  os.precision(17);
  (os << ... << args);
  return os.str();
}

/// A double with `precision` significant digits (short numbers in messages).
inline std::string num(double x, int precision = 4) {
  std::ostringstream os;
  os.precision(precision);
  os << x;
  return os.str();
}

/// The whitespace-separated words of `s` (space, tab, CR, LF, VT, FF), in order.
inline std::vector<std::string> split_whitespace(const std::string& s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  };
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && space(s[i])) ++i;
    if (i >= s.size()) break;
    std::size_t j = i;
    while (j < s.size() && !space(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

/// The bytes of the file `path`; std::invalid_argument "cannot open WHAT 'PATH'" or "cannot
/// read WHAT 'PATH'" (what: e.g. "sites file").
inline std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) throw std::invalid_argument("cannot open " + what + " '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::invalid_argument("cannot read " + what + " '" + path + "'");
  return ss.str();
}

}  // namespace ionmsm::text
