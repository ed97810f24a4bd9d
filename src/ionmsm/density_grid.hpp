#pragma once
// A per-cell number density on a periodic grid in fractional (lamda) coordinates, as LAMMPS
// writes it with
//
//   fix  dens mobile ave/grid Nevery Nrepeat Nfreq Nx Ny Nz density/number ave running
//   dump dg all grid Nfreq dens.grid f_dens:grid:data
//   dump_modify dg sort id
//
// (docs/site-discovery.md). `dump grid` text format, one snapshot:
//
//   ITEM: UNITS                      <- optional (first snapshot only), then the units style
//   ITEM: TIME                       <- optional, then the time
//   ITEM: TIMESTEP
//   N
//   ITEM: BOX BOUNDS pp pp pp        <- or "ITEM: BOX BOUNDS xy xz yz pp pp pp" (triclinic:
//   xlo_bound xhi_bound [xy]            bounding-box values, as in dump atom/custom)
//   ylo_bound yhi_bound [xz]
//   zlo_bound zhi_bound [yz]
//   ITEM: DIMENSION
//   3
//   ITEM: GRID SIZE nx ny nz
//   Nx Ny Nz
//   ITEM: GRID CELLS COLUMNS...      <- one column (the density; lines in grid-ID order, i.e.
//   value                               `dump_modify sort id`) or two (the grid ID from
//   ...                                 `compute property/grid ... id`, then the density)
//
// Grid cell (ix, iy, iz), 0-based, covers fractional coordinates [ix/Nx, (ix+1)/Nx) x ...;
// its grid ID is 1 + ix + Nx (iy + Ny iz) (x fastest), as in LAMMPS. A file may hold several
// snapshots; the last one is used (with `ave running` it is the average over the whole run).
#include <Eigen/Dense>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/geometry.hpp"

namespace ionmsm {

struct DensityGrid {
  Box box;                              ///< the cell of the snapshot
  std::array<int, 3> n{0, 0, 0};        ///< grid cells along a, b, c
  std::vector<double> density;          ///< number per volume; index ix + Nx (iy + Ny iz)
  std::int64_t timestep = 0;            ///< of the snapshot used
  std::size_t n_snapshots = 0;          ///< snapshots in the file (the last is used)
  std::string column;                   ///< name of the density column
  std::string units;                    ///< units style if the file names it, else ""

  std::size_t size() const { return density.size(); }
  std::size_t index(int ix, int iy, int iz) const {
    return static_cast<std::size_t>(ix) +
           static_cast<std::size_t>(n[0]) *
               (static_cast<std::size_t>(iy) + static_cast<std::size_t>(n[1]) * iz);
  }
  /// (ix, iy, iz) of a flat index.
  std::array<int, 3> cell(std::size_t index) const;
  /// Volume of one grid cell (the cell volume / number of cells).
  double cell_volume() const;
  /// Fractional coordinates of the centre of a grid cell.
  Eigen::Vector3d cell_center(std::size_t index) const;
  /// Integral of the density: the mean number of atoms on the grid.
  double total_number() const;
};

/// Reads the last snapshot of a LAMMPS `dump grid` text file. Throws std::invalid_argument
/// "FILE:LINE: what was expected" for a missing or malformed item, a non-periodic or 2-d box, a
/// general-triclinic box, a per-atom or other foreign dump, a wrong number of columns or lines, a
/// grid-ID column that is not a permutation of 1..N, and a negative or non-finite density.
DensityGrid read_dump_grid(const std::string& path);
/// Same from text in memory (`name` is used in messages).
DensityGrid parse_dump_grid_text(const std::string& text, const std::string& name);

}  // namespace ionmsm
