// HDF5 write helpers shared by the counts file and the model file: see hdf5_util.hpp.
#include "ionmsm/hdf5_util.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace ionmsm::hdf5_util {

namespace {

// Every dataset with at least one element is chunked and carries HDF5's Fletcher-32 checksum
// filter, so that a reader detects bytes changed after writing (docs/file-format.md,
// "Checksums"); datasets with at least kCompressRows rows are also compressed (shuffle +
// deflate, applied before the checksum).
constexpr hsize_t kCompressRows = 32768;
constexpr hsize_t kChunkRows = 32768;

}  // namespace

Handle untimed_create_plist(hid_t plist_class) {
  Handle plist = checked(H5Pcreate(plist_class), H5Pclose, "cannot create property list");
  if (H5Pset_obj_track_times(plist, 0) < 0) h5fail("cannot turn off object timestamps");
  return plist;
}

Handle dataset_create_plist(int rank, const hsize_t* dims, bool checksum) {
  Handle plist = untimed_create_plist(H5P_DATASET_CREATE);
  const hsize_t rows = dims[0];
  hsize_t n = 1;
  for (int k = 0; k < rank; ++k) n *= dims[k];
  if (n == 0) return plist;  // nothing to protect; a chunk may not be empty
  if (!checksum && rows < kCompressRows) return plist;
  hsize_t chunk[H5S_MAX_RANK];
  chunk[0] = std::min(rows, kChunkRows);
  for (int k = 1; k < rank; ++k) chunk[k] = dims[k];
  if (H5Pset_chunk(plist, rank, chunk) < 0) h5fail("cannot set up chunked storage");
  if (rows >= kCompressRows && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 &&
      H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0) {
    if (H5Pset_shuffle(plist) < 0 || H5Pset_deflate(plist, 1) < 0)
      h5fail("cannot set up compression");
  }
  if (checksum && H5Pset_fletcher32(plist) < 0)
    h5fail("cannot set up the Fletcher-32 checksum filter");
  return plist;
}

Handle make_group(hid_t parent, const char* name) {
  Handle plist = untimed_create_plist(H5P_GROUP_CREATE);
  return checked(H5Gcreate2(parent, name, H5P_DEFAULT, plist, H5P_DEFAULT), H5Gclose,
                 std::string("cannot create group '") + name + "'");
}

void write_string_dataset(hid_t parent, const char* name, const std::vector<std::string>& v) {
  const hsize_t dims[1] = {v.size()};
  Handle type = vlen_string_type();
  Handle space = checked(H5Screate_simple(1, dims, nullptr), H5Sclose,
                         std::string("cannot create dataspace for '") + name + "'");
  Handle plist = dataset_create_plist(1, dims, false);
  Handle dset = checked(H5Dcreate2(parent, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT),
                        H5Dclose, std::string("cannot create dataset '") + name + "'");
  std::vector<const char*> ptrs;
  ptrs.reserve(v.size());
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (!ptrs.empty() && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    h5fail(std::string("cannot write dataset '") + name + "'");
}

void write_attribute(hid_t obj, const char* name, const std::string& value) {
  Handle type = vlen_string_type();
  Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, "cannot create dataspace");
  Handle attr = checked(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                        std::string("cannot create attribute '") + name + "'");
  const char* p = value.c_str();
  if (H5Awrite(attr, type, &p) < 0) h5fail(std::string("cannot write attribute '") + name + "'");
}

std::string trim_fixed(const char* p, std::size_t size) {
  std::size_t len = 0;
  while (len < size && p[len] != '\0') ++len;
  while (len > 0 && p[len - 1] == ' ') --len;  // H5T_STR_SPACEPAD
  return std::string(p, len);
}

bool read_string_value(hid_t attr, hid_t type, std::string& out) {
  out.clear();
  if (H5Tis_variable_str(type) > 0) {
    char* p = nullptr;
    if (H5Aread(attr, type, &p) < 0) return false;
    if (p) {
      out = p;
      H5free_memory(p);
    }
    return true;
  }
  const std::size_t size = H5Tget_size(type);
  std::vector<char> buf(size + 1, '\0');
  if (H5Aread(attr, type, buf.data()) < 0) return false;
  out = trim_fixed(buf.data(), size);
  return true;
}

std::string read_string_attribute(hid_t obj, const char* name) {
  Handle attr = checked(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose,
                        std::string("missing attribute '") + name + "'");
  Handle type(H5Aget_type(attr), H5Tclose);
  std::string out;
  if (!type.valid() || H5Tget_class(type) != H5T_STRING || !read_string_value(attr, type, out))
    h5fail(std::string("attribute '") + name + "' is not a string");
  return out;
}

}  // namespace ionmsm::hdf5_util
