// Reader of LAMMPS `dump grid` text files holding one per-cell density (density_grid.hpp).
#include "ionmsm/density_grid.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "ionmsm/text.hpp"

namespace ionmsm {

std::array<int, 3> DensityGrid::cell(std::size_t index) const {
  const std::size_t nx = static_cast<std::size_t>(n[0]);
  const std::size_t ny = static_cast<std::size_t>(n[1]);
  return {static_cast<int>(index % nx), static_cast<int>((index / nx) % ny),
          static_cast<int>(index / (nx * ny))};
}

double DensityGrid::cell_volume() const {
  return box.volume() / (static_cast<double>(n[0]) * n[1] * n[2]);
}

Eigen::Vector3d DensityGrid::cell_center(std::size_t index) const {
  const std::array<int, 3> c = cell(index);
  return {(c[0] + 0.5) / n[0], (c[1] + 0.5) / n[1], (c[2] + 0.5) / n[2]};
}

double DensityGrid::total_number() const {
  double sum = 0.0;
  for (double v : density) sum += v;
  return sum * cell_volume();
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }


bool parse_double(const std::string& tok, double& v) {
  const char* first = tok.data();
  const char* last = first + tok.size();
  if (first != last && *first == '+') ++first;
  const auto r = std::from_chars(first, last, v);
  return r.ec == std::errc() && r.ptr == last && first != last;
}

bool parse_int64(const std::string& tok, std::int64_t& v) {
  const char* first = tok.data();
  const char* last = first + tok.size();
  const auto r = std::from_chars(first, last, v);
  return r.ec == std::errc() && r.ptr == last && first != last;
}

// Line-by-line reader over the whole text that knows the current line number.
class Lines {
 public:
  Lines(const std::string& text, const std::string& name) : text_(text), name_(name) {}
  bool at_end() {
    skip_blank();
    return pos_ >= text_.size();
  }
  // Next non-blank line (trimmed of '\r'); throws at end of file, naming what was expected.
  std::string next(const std::string& expected) {
    skip_blank();
    if (pos_ >= text_.size())
      throw std::invalid_argument(name_ + ":" + std::to_string(line_ + 1) +
                                  ": unexpected end of file, expected " + expected);
    return take();
  }
  std::size_t line() const { return line_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument(name_ + ":" + std::to_string(line_) + ": " + what);
  }

 private:
  std::string take() {
    std::size_t eol = text_.find('\n', pos_);
    if (eol == std::string::npos) eol = text_.size();
    std::string s = text_.substr(pos_, eol - pos_);
    pos_ = eol + 1;
    ++line_;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    return s;
  }
  void skip_blank() {
    while (pos_ < text_.size()) {
      std::size_t eol = text_.find('\n', pos_);
      if (eol == std::string::npos) eol = text_.size();
      bool blank = true;
      for (std::size_t i = pos_; i < eol; ++i)
        if (!is_space(text_[i])) blank = false;
      if (!blank) return;
      pos_ = eol + 1;
      ++line_;
    }
  }
  const std::string& text_;
  const std::string& name_;
  std::size_t pos_ = 0;
  std::size_t line_ = 0;
};

constexpr const char* kHowToWrite =
    " (write the density with 'fix ID GROUP ave/grid ... density/number' and 'dump ID all grid "
    "N FILE f_ID:grid:data' plus 'dump_modify ID sort id'; docs/site-discovery.md)";

// The item name after "ITEM: ", or fails with a message that recognises foreign dumps.
std::string item_name(Lines& in, const std::string& line, const std::string& expected) {
  if (line.rfind("ITEM:", 0) != 0)
    in.fail("not a LAMMPS dump grid file: expected '" + expected + "', got '" + line + "'" +
            kHowToWrite);
  std::string name = line.substr(5);
  while (!name.empty() && is_space(name.front())) name.erase(name.begin());
  if (name.rfind("NUMBER OF ATOMS", 0) == 0)
    in.fail("this is a per-atom LAMMPS dump (ITEM: NUMBER OF ATOMS), not a dump grid file" +
            std::string(kHowToWrite));
  if (name.rfind("NUMBER OF ENTRIES", 0) == 0)
    in.fail("this is a LAMMPS dump local file (ITEM: NUMBER OF ENTRIES), not a dump grid file" +
            std::string(kHowToWrite));
  return name;
}

// Parses "ITEM: BOX BOUNDS ..." and its three lines into a Box (periodic boxes only).
Box parse_box(Lines& in, const std::string& item) {
  std::vector<std::string> tok = text::split_whitespace(item);  // BOX BOUNDS [xy xz yz] b b b
  const bool triclinic = tok.size() == 8 && tok[2] == "xy" && tok[3] == "xz" && tok[4] == "yz";
  if (tok.size() >= 3 && (tok[2] == "abc" || tok[2] == "origin"))
    in.fail("general triclinic boxes are not supported; use LAMMPS' restricted triclinic box");
  if (!triclinic && tok.size() != 5)
    in.fail("expected 'ITEM: BOX BOUNDS pp pp pp' or 'ITEM: BOX BOUNDS xy xz yz pp pp pp', got "
            "'ITEM: " + item + "'");
  for (std::size_t k = tok.size() - 3; k < tok.size(); ++k)
    if (tok[k] != "pp")
      in.fail("the box must be periodic in x, y and z (bounds 'pp pp pp'), got 'ITEM: " + item +
              "'");
  double v[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  const std::size_t ncol = triclinic ? 3 : 2;
  for (int d = 0; d < 3; ++d) {
    const std::string line = in.next("a line of box bounds");
    const std::vector<std::string> t = text::split_whitespace(line);
    bool ok = t.size() == ncol;
    for (std::size_t k = 0; ok && k < ncol; ++k)
      ok = parse_double(t[k], v[d][k]) && std::isfinite(v[d][k]);
    if (!ok)
      in.fail("expected " + std::to_string(ncol) + " finite numbers on a box-bounds line, got '" +
              line + "'");
  }
  // Triclinic dumps give the bounding box; recover lo/hi as dump atom readers do.
  const double xy = triclinic ? v[0][2] : 0.0, xz = triclinic ? v[1][2] : 0.0,
               yz = triclinic ? v[2][2] : 0.0;
  const double lo[3] = {v[0][0] - std::min({0.0, xy, xz, xy + xz}), v[1][0] - std::min(0.0, yz),
                        v[2][0]};
  const double hi[3] = {v[0][1] - std::max({0.0, xy, xz, xy + xz}), v[1][1] - std::max(0.0, yz),
                        v[2][1]};
  try {
    return Box::from_lammps(lo, hi, xy, xz, yz);
  } catch (const std::invalid_argument& e) {
    in.fail(std::string("invalid box: ") + e.what());
  }
}

// Reads the "value" line of a single-value item.
std::int64_t single_integer(Lines& in, const std::string& what) {
  const std::string line = in.next(what);
  const std::vector<std::string> t = text::split_whitespace(line);
  std::int64_t v = 0;
  if (t.size() != 1 || !parse_int64(t[0], v)) in.fail("expected " + what + ", got '" + line + "'");
  return v;
}

std::array<int, 3> parse_grid_size(Lines& in) {
  const std::string line = in.next("the grid size 'Nx Ny Nz'");
  const std::vector<std::string> t = text::split_whitespace(line);
  std::array<int, 3> n{0, 0, 0};
  bool ok = t.size() == 3;
  for (int k = 0; ok && k < 3; ++k) {
    std::int64_t v = 0;
    ok = parse_int64(t[static_cast<std::size_t>(k)], v) && v > 0 && v <= (1 << 20);
    n[static_cast<std::size_t>(k)] = static_cast<int>(v);
  }
  if (!ok) in.fail("expected the grid size as three positive integers 'Nx Ny Nz', got '" + line +
                   "'");
  if (static_cast<double>(n[0]) * n[1] * n[2] > 2.0e8)
    in.fail("grid of " + line + " cells is too large (at most 2e8 cells)");
  return n;
}

// Reads the cell lines of one snapshot into grid.density (grid.n set).
void parse_cells(Lines& in, const std::string& item, DensityGrid& grid) {
  const std::vector<std::string> cols = text::split_whitespace(item.substr(std::string("GRID CELLS").size()));
  if (cols.empty() || cols.size() > 2)
    in.fail("expected one density column, or a grid-ID column (compute property/grid ... id) "
            "and a density column, got " + std::to_string(cols.size()) + " columns in 'ITEM: " +
            item + "'");
  const bool with_id = cols.size() == 2;
  grid.column = cols.back();
  const std::size_t ncell = static_cast<std::size_t>(grid.n[0]) * grid.n[1] * grid.n[2];
  grid.density.assign(ncell, 0.0);
  std::vector<char> seen(with_id ? ncell : 0, 0);
  for (std::size_t i = 0; i < ncell; ++i) {
    const std::string line =
        in.next(std::to_string(ncell) + " grid-cell lines (got " + std::to_string(i) + ")");
    const std::vector<std::string> t = text::split_whitespace(line);
    if (t.size() != cols.size() || t[0].rfind("ITEM:", 0) == 0)
      in.fail("expected " + std::to_string(cols.size()) + " value(s) per grid-cell line (" +
              std::to_string(ncell) + " lines), got '" + line + "'");
    double rho = 0.0;
    if (!parse_double(t.back(), rho) || !std::isfinite(rho))
      in.fail("expected a finite density, got '" + t.back() + "'");
    if (rho < 0.0) in.fail("negative density '" + t.back() + "'");
    std::size_t where = i;
    if (with_id) {
      double id = 0.0;
      if (!parse_double(t[0], id) || id != std::floor(id) || id < 1.0 ||
          id > static_cast<double>(ncell))
        in.fail("expected a grid ID between 1 and " + std::to_string(ncell) + ", got '" + t[0] +
                "'");
      where = static_cast<std::size_t>(id) - 1;
      if (seen[where]) in.fail("grid ID " + t[0] + " appears twice");
      seen[where] = 1;
    }
    grid.density[where] = rho;
  }
}

// Parses one snapshot starting at its first ITEM line.
DensityGrid parse_snapshot(Lines& in, bool first) {
  DensityGrid g;
  std::string line = in.next("'ITEM: TIMESTEP'");
  std::string name = item_name(in, line, "ITEM: TIMESTEP");
  if (name == "UNITS") {
    if (!first) in.fail("'ITEM: UNITS' may only start the first snapshot");
    const std::vector<std::string> t = text::split_whitespace(in.next("the units style"));
    g.units = t.empty() ? std::string() : t[0];
    name = item_name(in, line = in.next("'ITEM: TIMESTEP'"), "ITEM: TIMESTEP");
  }
  if (name == "TIME") {
    in.next("the time");
    name = item_name(in, line = in.next("'ITEM: TIMESTEP'"), "ITEM: TIMESTEP");
  }
  if (name != "TIMESTEP") in.fail("expected 'ITEM: TIMESTEP', got '" + line + "'");
  g.timestep = single_integer(in, "the timestep");
  name = item_name(in, line = in.next("'ITEM: BOX BOUNDS'"), "ITEM: BOX BOUNDS");
  if (name.rfind("BOX BOUNDS", 0) != 0) in.fail("expected 'ITEM: BOX BOUNDS', got '" + line + "'");
  g.box = parse_box(in, name);
  name = item_name(in, line = in.next("'ITEM: DIMENSION'"), "ITEM: DIMENSION");
  if (name != "DIMENSION")
    in.fail("expected 'ITEM: DIMENSION' (a dump grid file), got '" + line + "'" + kHowToWrite);
  if (single_integer(in, "the dimension") != 3)
    in.fail("only 3-d simulations are supported (dimension 3)");
  name = item_name(in, line = in.next("'ITEM: GRID SIZE'"), "ITEM: GRID SIZE");
  if (name.rfind("GRID SIZE", 0) != 0) in.fail("expected 'ITEM: GRID SIZE', got '" + line + "'");
  g.n = parse_grid_size(in);
  name = item_name(in, line = in.next("'ITEM: GRID CELLS'"), "ITEM: GRID CELLS");
  if (name.rfind("GRID CELLS", 0) != 0 && name.rfind("GRID DATA", 0) != 0)
    in.fail("expected 'ITEM: GRID CELLS', got '" + line + "'");
  if (name.rfind("GRID DATA", 0) == 0) name = "GRID CELLS" + name.substr(9);
  parse_cells(in, name, g);
  return g;
}

}  // namespace

DensityGrid parse_dump_grid_text(const std::string& text, const std::string& name) {
  Lines in(text, name);
  if (in.at_end())
    throw std::invalid_argument(name + ": empty file, expected a LAMMPS dump grid file" +
                                kHowToWrite);
  DensityGrid last;
  std::string units;
  std::size_t count = 0;
  while (!in.at_end()) {
    DensityGrid g = parse_snapshot(in, count == 0);
    if (count == 0) units = g.units;
    if (count > 0 && g.n != last.n)
      in.fail("grid size changed between snapshots");
    last = std::move(g);
    ++count;
  }
  last.units = units;
  last.n_snapshots = count;
  return last;
}

DensityGrid read_dump_grid(const std::string& path) {
  return parse_dump_grid_text(text::read_file(path, "density grid file"), path);
}

}  // namespace ionmsm
