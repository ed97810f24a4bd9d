// Sites text file reader (format in sites_file.hpp / docs/file-format.md).
#include "ionmsm/sites_file.hpp"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "ionmsm/text.hpp"

namespace ionmsm {

namespace {

constexpr int kSitesFormatVersion = 1;
constexpr const char* kSitesTag = "ionmsm-sites";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}


std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Parses a whole token as a number (locale independent). Accepts an optional leading '+'.
// Returns false if the token is not entirely a number; non-finite values parse successfully
// ("nan", "inf") and are rejected by the caller with a specific message.
bool parse_number(const std::string& tok, double& value) {
  const char* first = tok.data();
  const char* last = tok.data() + tok.size();
  if (first != last && *first == '+') {
    ++first;
    if (first != last && (*first == '-' || *first == '+')) return false;
  }
  if (first == last) return false;
  const auto res = std::from_chars(first, last, value, std::chars_format::general);
  if (res.ec == std::errc::result_out_of_range && res.ptr == last) {
    // A well-formed number that does not fit: underflow (negative exponent) is zero, overflow
    // is reported as non-finite by the caller.
    const bool negative = (*first == '-');
    const bool underflow =
        tok.find("e-") != std::string::npos || tok.find("E-") != std::string::npos;
    value = underflow ? (negative ? -0.0 : 0.0) : (negative ? -HUGE_VAL : HUGE_VAL);
    return true;
  }
  return res.ec == std::errc() && res.ptr == last;
}

std::string where(const std::string& name, std::size_t line) {
  return name + ":" + std::to_string(line) + ": ";
}

/// A comment on the first non-blank line may be the tag "# ionmsm-sites N": then N must be the
/// version this reader supports.
void check_tag(const std::string& comment, const std::string& stripped, const std::string& at) {
  const std::vector<std::string> tok = text::split_whitespace(comment);
  if (tok.empty() || tok[0] != kSitesTag) return;
  if (tok.size() != 2 || tok[1] != std::to_string(kSitesFormatVersion)) {
    const std::string got = tok.size() >= 2 ? tok[1] : std::string("(none)");
    throw std::invalid_argument(at + "unsupported sites file version '" + got + "' in tag '" +
                                stripped + "' (this reader supports '# " + kSitesTag + " " +
                                std::to_string(kSitesFormatVersion) + "')");
  }
}

/// "coordinates fractional|cartesian": at most once, before the first site.
void parse_coordinates_line(const std::vector<std::string>& tok, const std::string& body,
                            bool& seen_keyword, SitesFile& out, const std::string& at) {
  if (!out.coords.empty())
    throw std::invalid_argument(at + "'coordinates' must come before the first site");
  if (seen_keyword) throw std::invalid_argument(at + "'coordinates' given more than once");
  if (tok.size() != 2 || (tok[1] != "fractional" && tok[1] != "cartesian")) {
    throw std::invalid_argument(at +
                                "expected 'coordinates fractional' or 'coordinates "
                                "cartesian', got '" +
                                trim(body) + "'");
  }
  out.fractional = (tok[1] == "fractional");
  seen_keyword = true;
}

/// "x y z [label]" with finite coordinates (x already parsed as first_value).
void parse_site_line(const std::vector<std::string>& tok, double first_value,
                     const std::string& body, SitesFile& out, const std::string& at) {
  const std::string expected = "expected three coordinates 'x y z [label]', got '" + trim(body) +
                               "'";
  if (tok.size() < 3) throw std::invalid_argument(at + expected);
  double v[3] = {first_value, 0.0, 0.0};
  for (int k = 1; k < 3; ++k)
    if (!parse_number(tok[static_cast<std::size_t>(k)], v[k]))
      throw std::invalid_argument(at + expected);
  if (tok.size() > 4)
    throw std::invalid_argument(at + "too many columns (" + std::to_string(tok.size()) + "): " +
                                expected);
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(v[k])) {
      throw std::invalid_argument(at + "non-finite coordinate '" +
                                  tok[static_cast<std::size_t>(k)] + "' in '" + trim(body) + "'");
    }
  }
  out.coords.emplace_back(v[0], v[1], v[2]);
  out.labels.push_back(tok.size() == 4 ? tok[3] : std::string());
}

/// State of the line-by-line parse.
struct SitesParse {
  SitesFile out;
  bool seen_content = false;  // any non-blank line (comment or not) so far
  bool seen_keyword = false;
};

/// One line (without its end of line): blank, comment, keyword or site.
void parse_sites_line(std::string line, const std::string& at, SitesParse& st) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const std::string stripped = trim(line);
  if (stripped.empty()) return;
  const bool first_content = !st.seen_content;
  st.seen_content = true;
  std::string body = line;
  const std::size_t hash = body.find('#');
  if (hash != std::string::npos) {
    if (first_content && trim(body.substr(0, hash)).empty())
      check_tag(body.substr(hash + 1), stripped, at);
    body = body.substr(0, hash);
  }
  const std::vector<std::string> tok = text::split_whitespace(body);
  if (tok.empty()) return;  // comment-only line
  double first_value = 0.0;
  if (parse_number(tok[0], first_value)) {
    parse_site_line(tok, first_value, body, st.out, at);
  } else if (tok[0] == "coordinates") {
    parse_coordinates_line(tok, body, st.seen_keyword, st.out, at);
  } else {
    throw std::invalid_argument(at + "unknown keyword '" + tok[0] +
                                "' (expected 'coordinates fractional|cartesian' or a site "
                                "line 'x y z [label]'), got '" +
                                trim(body) + "'");
  }
}

}  // namespace

SitesFile parse_sites_text(const std::string& text, const std::string& name) {
  SitesParse st;
  std::size_t lineno = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    ++lineno;
    parse_sites_line(text.substr(pos, eol - pos), where(name, lineno), st);
    pos = eol + 1;
  }
  if (st.out.coords.empty()) {
    throw std::invalid_argument(name +
                                ": no sites found (expected one line 'x y z [label]' per "
                                "site)");
  }
  return st.out;
}

SitesFile read_sites_file(const std::string& path) {
  return parse_sites_text(text::read_file(path, "sites file"), path);
}

std::string check_cartesian_sites(const std::vector<Eigen::Vector3d>& cartesian,
                                  double min_face_distance, const std::string& name) {
  if (cartesian.empty() || !(min_face_distance >= 4.0)) return "";
  for (const auto& c : cartesian)
    if (!(c.cwiseAbs().maxCoeff() <= 1.0)) return "";
  std::ostringstream os;
  os << "all " << cartesian.size() << " sites in '" << name
     << "' lie inside the unit cube [-1, 1]^3 of a box whose faces are at least "
     << min_face_distance << " length units apart: these look like fractional coordinates "
     << "read as Cartesian ones (add the line 'coordinates fractional' to the sites file)";
  return os.str();
}

std::string check_early_occupancy(const std::vector<std::uint64_t>& occupancy,
                                  std::int64_t n_atoms) {
  std::size_t occupied = 0;
  for (auto o : occupancy) occupied += o > 0 ? 1 : 0;
  const std::size_t expect =
      std::min<std::size_t>(occupancy.size(), n_atoms > 0 ? static_cast<std::size_t>(n_atoms) : 0);
  if (2 * occupied >= expect) return "";
  std::ostringstream os;
  os << "only " << occupied << " of " << occupancy.size() << " sites were occupied by "
     << n_atoms << " atoms in the first samples: most atoms crowd onto a few sites, so the "
     << "sites are probably misplaced (fractional coordinates read as Cartesian, another "
     << "length unit or origin?)";
  return os.str();
}

std::string format_sites_text(const SitesFile& sites,
                              const std::vector<std::string>& header_comments,
                              const std::vector<std::string>& site_comments) {
  const std::size_t n = sites.coords.size();
  if (n == 0) throw std::invalid_argument("sites file: no sites to write");
  if (sites.labels.size() != n && !sites.labels.empty())
    throw std::invalid_argument("sites file: " + std::to_string(sites.labels.size()) +
                                " labels for " + std::to_string(n) + " sites");
  if (site_comments.size() != n && !site_comments.empty())
    throw std::invalid_argument("sites file: " + std::to_string(site_comments.size()) +
                                " comments for " + std::to_string(n) + " sites");
  auto no_break = [](const std::string& c) {
    if (c.find('\n') != std::string::npos || c.find('\r') != std::string::npos)
      throw std::invalid_argument("sites file: comment '" + c + "' contains a line break");
  };
  std::string out = "# " + std::string(kSitesTag) + " " + std::to_string(kSitesFormatVersion) + "\n";
  for (const std::string& c : header_comments) {
    no_break(c);
    out += "# " + c + "\n";
  }
  out += sites.fractional ? "coordinates fractional\n" : "coordinates cartesian\n";
  char buf[128];
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::Vector3d& x = sites.coords[i];
    if (!x.allFinite())
      throw std::invalid_argument("sites file: site " + std::to_string(i) + " is not finite");
    std::snprintf(buf, sizeof buf, "%.17g %.17g %.17g", x[0], x[1], x[2]);
    out += buf;
    const std::string label = sites.labels.empty() ? std::string() : sites.labels[i];
    for (char c : label)
      if (is_space(c) || c == '#')
        throw std::invalid_argument("sites file: label '" + label +
                                    "' contains whitespace or '#'");
    if (!label.empty()) out += " " + label;
    if (!site_comments.empty() && !site_comments[i].empty()) {
      no_break(site_comments[i]);
      out += "  # " + site_comments[i];
    }
    out += "\n";
  }
  return out;
}

void write_sites_file(const std::string& path, const SitesFile& sites,
                      const std::vector<std::string>& header_comments,
                      const std::vector<std::string>& site_comments) {
  const std::string text = format_sites_text(sites, header_comments, site_comments);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::out | std::ios::binary | std::ios::trunc);
    if (!f) throw std::invalid_argument("cannot write sites file '" + tmp + "'");
    f << text;
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::invalid_argument("cannot write sites file '" + tmp + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::invalid_argument("cannot rename '" + tmp + "' to sites file '" + path + "'");
  }
}

}  // namespace ionmsm
