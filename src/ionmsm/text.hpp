#pragma once
// Number-to-text helpers for error messages of the core (one home, so that every message
// prints numbers the same way).
#include <sstream>
#include <string>

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

}  // namespace ionmsm::text
