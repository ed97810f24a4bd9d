// Writing the counts file (HDF5; schema: docs/file-format.md): the groups and datasets of
// one CountsData, built as an image in memory and then written atomically to disk. Uses the
// HDF5 C API only; no HDF5 type leaks into the header.
#include <hdf5.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counts_file.hpp"
#include "ionmsm/hdf5_util.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm {

namespace {

using namespace hdf5_util;

/// Optional /blocks group (docs/file-format.md, "Blocks").
void write_blocks(hid_t file, const CountsData& d) {
  write_attribute(file, "block_steps", d.block_steps);
  Handle g = make_group(file, "blocks");
  const std::size_t nb = d.blocks.size(), nl = d.lags.size(), ns = d.nsites();
  std::vector<std::int64_t> index, row_offset{0};
  std::vector<std::uint64_t> n_samples, origins, occupancy, count;
  std::vector<std::int32_t> from, to, shift;
  for (const auto& b : d.blocks) {
    index.push_back(b.index);
    n_samples.push_back(b.n_samples);
    origins.insert(origins.end(), b.n_origins.begin(), b.n_origins.end());
    occupancy.insert(occupancy.end(), b.occupancy.begin(), b.occupancy.end());
    for (const auto& rows : b.rows) {
      for (const auto& r : rows) {
        from.push_back(r.from);
        to.push_back(r.to);
        shift.insert(shift.end(), {r.shift[0], r.shift[1], r.shift[2]});
        count.push_back(r.count);
      }
      row_offset.push_back(static_cast<std::int64_t>(count.size()));
    }
  }
  write_dataset(g, "index", index);
  write_dataset(g, "n_samples", n_samples);
  if (nl > 0) write_dataset(g, "n_origins", origins.data(), nb, nl);
  if (ns > 0) write_dataset(g, "occupancy", occupancy.data(), nb, ns);
  write_dataset(g, "row_offset", row_offset);
  write_dataset(g, "from", from);
  write_dataset(g, "to", to);
  write_dataset(g, "shift", shift.data(), count.size(), 3);
  write_dataset(g, "count", count);
}

/// Root attributes: format tag and version, provenance, units and sampling, optional history,
/// memory and assignment attributes.
void write_root_attributes(hid_t file, const CountsData& d) {
  write_attribute(file, "format", std::string(kCountsFormatTag));
  write_attribute(file, "format_version", static_cast<std::int32_t>(kCountsFormatVersion));
  write_attribute(file, "ionmsm_version", d.ionmsm_version);
  write_attribute(file, "lammps_version", d.lammps_version);
  write_attribute(file, "command", d.command);
  write_attribute(file, "units", d.units);
  write_attribute(file, "timestep", d.timestep);
  write_attribute(file, "timestep_ps", d.timestep_ps);
  write_attribute(file, "nevery", d.nevery);
  write_attribute(file, "first_step", d.first_step);
  write_attribute(file, "last_step", d.last_step);
  write_attribute(file, "n_atoms", d.n_atoms);
  write_attribute(file, "n_samples", d.n_samples);
  if (d.history) {
    write_attribute(file, "history", std::string(d.history->name()));
    write_attribute(file, "history_m", d.history->m);
  }
  if (d.doubles_per_atom > 0) {
    write_attribute(file, "doubles_per_atom", d.doubles_per_atom);
    write_attribute(file, "bytes_per_atom", static_cast<std::int64_t>(8 * d.doubles_per_atom));
  }
  if (d.assign) write_attribute(file, "assign", std::string(assign_mode_name(*d.assign)));
  if (d.assign == AssignMode::Core) {
    write_attribute(file, "core_radius", d.core_radius);
    write_attribute(file, "n_outside_core", d.n_outside_core);
    std::uint64_t occ = 0;
    for (auto o : d.occupancy) occ += o;
    write_attribute(file, "fraction_outside_core",
                    occ > 0 ? static_cast<double>(d.n_outside_core) / static_cast<double>(occ)
                            : 0.0);
  }
}

/// /box (origin, h row-major) and /sites (fractional, cartesian, labels if any, occupancy).
void write_box_and_sites(hid_t file, const CountsData& d) {
  {
    Handle box = make_group(file, "box");
    write_dataset(box, "origin", d.box_origin.data(), 3);
    std::vector<double> h(9);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) h[static_cast<std::size_t>(3 * i + j)] = d.box_h(i, j);
    write_dataset(box, "h", h, 3);
  }
  Handle sites = make_group(file, "sites");
  const std::size_t n = d.nsites();
  std::vector<double> buf(3 * n);
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) buf[3 * i + static_cast<std::size_t>(k)] = d.site_fractional[i][k];
  write_dataset(sites, "fractional", buf, 3);
  const auto cart = d.site_cartesian();
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) buf[3 * i + static_cast<std::size_t>(k)] = cart[i][k];
  write_dataset(sites, "cartesian", buf, 3);
  const bool any_label = std::any_of(d.site_labels.begin(), d.site_labels.end(),
                                     [](const std::string& s) { return !s.empty(); });
  if (any_label) write_string_dataset(sites, "labels", d.site_labels);
  write_dataset(sites, "occupancy", d.occupancy);
}

/// /lags/displacement_sum (L x 3) and /lags/displacement_sq_sum (L x 3 x 3).
void write_displacements(hid_t lags, const CountsData& d) {
  std::vector<double> sum, sq;
  for (const auto& lc : d.lags) {
    for (int a = 0; a < 3; ++a) sum.push_back(lc.displacement_sum[a]);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) sq.push_back(lc.displacement_sq_sum(a, b));
  }
  write_dataset(lags, "displacement_sum", sum, 3);
  const hsize_t dims[3] = {static_cast<hsize_t>(d.lags.size()), 3, 3};
  Handle space = checked(H5Screate_simple(3, dims, nullptr), H5Sclose,
                         "cannot create dataspace for 'displacement_sq_sum'");
  Handle plist = dataset_create_plist(3, dims);
  Handle dset = checked(H5Dcreate2(lags, "displacement_sq_sum", H5T_IEEE_F64LE, space,
                                   H5P_DEFAULT, plist, H5P_DEFAULT),
                        H5Dclose, "cannot create dataset 'displacement_sq_sum'");
  if (!sq.empty() &&
      H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sq.data()) < 0)
    h5fail("cannot write dataset 'displacement_sq_sum'");
}

/// /lags: per lag its steps, origins, total count and first row in /counts (row_offset, L + 1
/// entries), plus the optional levels and displacement sums.
void write_lags(hid_t file, const CountsData& d) {
  Handle lags = make_group(file, "lags");
  std::vector<std::int64_t> lag_steps, row_offset{0};
  std::vector<std::uint64_t> n_origins, totals;
  for (const auto& lc : d.lags) {
    lag_steps.push_back(lc.lag_steps);
    n_origins.push_back(lc.n_origins);
    totals.push_back(lc.total());
    row_offset.push_back(row_offset.back() + static_cast<std::int64_t>(lc.rows.size()));
  }
  write_dataset(lags, "lag_steps", lag_steps);
  write_dataset(lags, "n_origins", n_origins);
  write_dataset(lags, "total_counts", totals);
  write_dataset(lags, "row_offset", row_offset);
  if (d.has_levels) {
    std::vector<std::int32_t> level;
    for (const auto& lc : d.lags) level.push_back(lc.level);
    write_dataset(lags, "level", level);
  }
  if (d.has_displacement) write_displacements(lags, d);
}

/// /counts: the rows of all lags, one column per dataset (lag_index, from, to, shift, count);
/// one column buffer at a time, so that large files need little extra memory.
void write_count_rows(hid_t file, const CountsData& d) {
  std::size_t m = 0;
  for (const auto& lc : d.lags) m += lc.rows.size();
  Handle counts = make_group(file, "counts");
  std::vector<std::int32_t> col(m), shift(3 * m);
  std::size_t k = 0;
  for (std::size_t i = 0; i < d.lags.size(); ++i)
    for (std::size_t r = 0; r < d.lags[i].rows.size(); ++r) col[k++] = static_cast<std::int32_t>(i);
  write_dataset(counts, "lag_index", col);
  k = 0;
  for (const auto& lc : d.lags)
    for (const auto& r : lc.rows) col[k++] = r.from;
  write_dataset(counts, "from", col);
  k = 0;
  for (const auto& lc : d.lags)
    for (const auto& r : lc.rows) col[k++] = r.to;
  write_dataset(counts, "to", col);
  k = 0;
  for (const auto& lc : d.lags)
    for (const auto& r : lc.rows)
      for (int c = 0; c < 3; ++c) shift[k++] = r.shift[static_cast<std::size_t>(c)];
  write_dataset(counts, "shift", shift, 3);
  std::vector<std::int32_t>().swap(col);
  std::vector<std::int32_t>().swap(shift);
  std::vector<std::uint64_t> cnt(m);
  k = 0;
  for (const auto& lc : d.lags)
    for (const auto& r : lc.rows) cnt[k++] = r.count;
  write_dataset(counts, "count", cnt);
}

/// The whole file, in the order of docs/file-format.md.
void write_contents(hid_t file, const CountsData& d) {
  write_root_attributes(file, d);
  write_box_and_sites(file, d);
  write_lags(file, d);
  write_count_rows(file, d);
  if (d.block_steps > 0) write_blocks(file, d);
}

/// Bob Jenkins' lookup3 hash ("hashlittle", bytes in little-endian order), the checksum HDF5
/// uses for its metadata (superblock version 2, object headers version 2, ...).
std::uint32_t lookup3(const unsigned char* k, std::size_t length, std::uint32_t initval) {
  auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefU + static_cast<std::uint32_t>(length) + initval;
  auto word = [&](const unsigned char* p, std::size_t n) {
    std::uint32_t w = 0;
    for (std::size_t i = 0; i < n; ++i) w += static_cast<std::uint32_t>(p[i]) << (8 * i);
    return w;
  };
  while (length > 12) {
    a += word(k, 4);
    b += word(k + 4, 4);
    c += word(k + 8, 4);
    a -= c; a ^= rot(c, 4);  c += b;
    b -= a; b ^= rot(a, 6);  a += c;
    c -= b; c ^= rot(b, 8);  b += a;
    a -= c; a ^= rot(c, 16); c += b;
    b -= a; b ^= rot(a, 19); a += c;
    c -= b; c ^= rot(b, 4);  b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  a += word(k, std::min<std::size_t>(length, 4));
  if (length > 4) b += word(k + 4, std::min<std::size_t>(length - 4, 4));
  if (length > 8) c += word(k + 8, length - 8);
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
  return c;
}

/// H5Fget_file_image copies a version 2/3 superblock with the checksum of an earlier state
/// (HDF5 1.10: only the checksum is stale, the fields are final); recompute it.
void fix_superblock_checksum(std::vector<unsigned char>& image) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (image.size() < 48 || !std::equal(sig, sig + 8, image.begin())) return;
  const unsigned version = image[8];
  if ((version != 2 && version != 3) || image[9] != 8 || image[10] != 8) return;
  const std::size_t fields = 12 + 4 * 8;  // signature .. root object header address
  const std::uint32_t sum = lookup3(image.data(), fields, 0);
  for (int i = 0; i < 4; ++i) image[fields + static_cast<std::size_t>(i)] = static_cast<unsigned char>(sum >> (8 * i));
}

/// Opens an image in memory read-only: throws H5Failure unless HDF5 accepts it.
void check_image_opens(const std::vector<unsigned char>& image) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create property list");
  if (H5Pset_fapl_core(fapl, std::size_t{1} << 20, 0) < 0 ||
      H5Pset_file_image(fapl, const_cast<unsigned char*>(image.data()), image.size()) < 0)
    h5fail("cannot set up the check of the file image");
  Handle file = checked(H5Fopen("ionmsm-image-check", H5F_ACC_RDONLY, fapl), H5Fclose,
                        "the file image built in memory does not open again");
}

/// The whole counts file, built in memory (HDF5's core driver without a backing store): HDF5
/// itself never touches the disk, so a full disk or a failing write cannot leave an HDF5 file
/// open (its shutdown would then crash), and every disk failure is a plain errno below.
std::vector<unsigned char> counts_file_image(const std::string& name, const CountsData& data) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create property list");
  if (H5Pset_fapl_core(fapl, std::size_t{1} << 20, 0) < 0) h5fail("cannot set up the core driver");
  // object headers and superblock of format 1.8 carry checksums of the metadata (attributes
  // included); readers since HDF5 1.8 read them
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
    h5fail("cannot set the file format bounds");
  Handle fcpl = untimed_create_plist(H5P_FILE_CREATE);  // the root group carries no timestamp
  Handle file = checked(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, fcpl, fapl), H5Fclose,
                        "cannot create the file in memory");
  write_contents(file, data);
  if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) h5fail("cannot flush the file image");
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  if (size <= 0) h5fail("cannot get the size of the file image");
  std::vector<unsigned char> image(static_cast<std::size_t>(size));
  if (H5Fget_file_image(file, image.data(), image.size()) != size)
    h5fail("cannot copy the file image");
  if (file.close() < 0) h5fail("cannot close the file image");
  fix_superblock_checksum(image);
  check_image_opens(image);
  return image;
}

/// Writes bytes to a new file `tmp` and makes them durable (fsync) before returning; "" on
/// success, else the failing step and errno's text. Closes the descriptor on every path.
std::string write_whole_file(const std::string& tmp, const std::vector<unsigned char>& bytes) {
  const std::string name = "temporary file '" + tmp + "'";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return "cannot create " + name + ": " + std::strerror(errno);
  std::size_t done = 0;
  std::string err;
  while (done < bytes.size() && err.empty()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      err = "cannot write " + name + " (" + std::to_string(done) + " of " +
            std::to_string(bytes.size()) + " bytes written): " + std::strerror(n < 0 ? errno : EIO);
    else
      done += static_cast<std::size_t>(n);
  }
  // a full disk or quota may only be reported when the data reach the disk (NFS, Lustre)
  if (err.empty() && ::fsync(fd) != 0) err = "cannot sync " + name + ": " + std::strerror(errno);
  if (::close(fd) != 0 && err.empty()) err = "cannot close " + name + ": " + std::strerror(errno);
  return err;
}

}  // namespace

void write_counts_file(const std::string& path, const CountsData& data) {
  data.validate();
  QuietHdf5 quiet;
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  auto fail = [&](const std::string& reason) -> void {
    ::unlink(tmp.c_str());  // a file only: never a directory that happens to have the name
    throw std::runtime_error("cannot write counts file '" + path + "': " + reason);
  };
  namespace fs = std::filesystem;
  {
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw std::runtime_error("cannot write counts file '" + path + "': directory '" +
                               parent.string() + "' " +
                               (fs::exists(parent, ec) ? "is not a directory" : "does not exist"));
    if (fs::is_directory(fs::path(path), ec))
      throw std::runtime_error("cannot write counts file '" + path + "': it is a directory");
  }
  std::vector<unsigned char> image;
  try {
    image = counts_file_image(tmp, data);
  } catch (const H5Failure& e) {
    throw std::runtime_error("cannot write counts file '" + path + "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("cannot write counts file '" + path + "': out of memory");
  }
  const std::string err = write_whole_file(tmp, image);
  if (!err.empty()) fail(err);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    fail("cannot rename '" + tmp + "' onto it: " + std::strerror(e));
  }
}

}  // namespace ionmsm
