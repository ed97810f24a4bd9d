// Integrity check of a counts file: see counts_verify.hpp.
#include "ionmsm/counts_verify.hpp"

#include <hdf5.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/hdf5_util.hpp"

namespace ionmsm {

namespace {

using namespace hdf5_util;

struct VisitState {
  CountsFileCheck* check;
  std::string problem;  ///< first failure ("" while none)
};

/// Why a read failed; call right after the failing call (any later HDF5 call clears the stack).
std::string read_failure(const std::string& name) {
  if (hdf5_checksum_error())
    return "the file is damaged: dataset '" + name + "': its Fletcher-32 checksum does not "
           "match the stored bytes (the file changed after it was written)";
  const std::string d = hdf5_error_detail();
  return "cannot read dataset '" + name + "'" + (d.empty() ? std::string() : " (HDF5: " + d + ")");
}

/// Reads one dataset in full; its chunks' checksums are verified on the way.
std::string read_whole_dataset(hid_t dset, const std::string& name, CountsFileCheck& check) {
  Handle dcpl(H5Dget_create_plist(dset), H5Pclose);
  if (!dcpl.valid()) return "cannot read the creation properties of dataset '" + name + "'";
  unsigned flags = 0;
  std::size_t nvalues = 0;
  unsigned values[4];
  char fname[64];
  unsigned config = 0;
  if (H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nvalues, values, sizeof fname,
                           fname, &config) >= 0)
    ++check.with_checksum;
  H5Eclear2(H5E_DEFAULT);
  Handle space(H5Dget_space(dset), H5Sclose);
  const hssize_t n = space.valid() ? H5Sget_simple_extent_npoints(space) : -1;
  if (n < 0) return "cannot get the shape of dataset '" + name + "'";
  if (n == 0) {
    ++check.empty;
    return "";
  }
  Handle type(H5Dget_type(dset), H5Tclose);
  if (!type.valid()) return "cannot get the type of dataset '" + name + "'";
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
    // variable-length strings: read the stored references (what the checksum covers)
    std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
    if (H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      return read_failure(name);
    for (char* p : ptrs)
      if (p) H5free_memory(p);
    return "";
  }
  Handle native(H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose);
  if (!native.valid()) return "cannot get the type of dataset '" + name + "'";
  std::vector<unsigned char> buf(static_cast<std::size_t>(n) * H5Tget_size(native));
  if (H5Dread(dset, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    return read_failure(name);
  return "";
}

template <class LinkInfo>
herr_t visit_link(hid_t group, const char* name, const LinkInfo*, void* client) {
  auto* st = static_cast<VisitState*>(client);
  Handle obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
  if (!obj.valid()) {
    H5Eclear2(H5E_DEFAULT);
    st->problem = "cannot open object '/" + std::string(name) + "'";
    return 1;
  }
  if (H5Iget_type(obj) != H5I_DATASET) return 0;
  ++st->check->datasets;
  const std::string path = "/" + std::string(name);
  const std::string err = read_whole_dataset(obj, path, *st->check);
  H5Eclear2(H5E_DEFAULT);
  if (err.empty()) return 0;
  st->problem = err;
  return 1;
}

}  // namespace

CountsFileCheck verify_counts_file(const std::string& path) {
  // the reader names missing, unreadable, foreign and damaged files and checks every
  // consistency rule; it reads the datasets it needs
  CountsFileCheck check;
  check.data = read_counts_file(path);
  // every dataset in full (also those the reader does not need, e.g. /sites/cartesian)
  QuietHdf5 quiet;
  Handle fapl = file_access_plist();
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (!file.valid()) {
    const std::string detail = hdf5_error_detail();
    H5Eclear2(H5E_DEFAULT);
    throw std::runtime_error("cannot open counts file '" + path + "'" +
                             (detail.empty() ? std::string() : " (HDF5: " + detail + ")"));
  }
  VisitState st{&check, ""};
  const herr_t rc = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &st);
  if (!st.problem.empty()) throw std::runtime_error("counts file '" + path + "': " + st.problem);
  if (rc < 0) {
    const std::string detail = hdf5_error_detail();
    H5Eclear2(H5E_DEFAULT);
    throw std::runtime_error("counts file '" + path + "': cannot list its datasets" +
                             (detail.empty() ? std::string() : " (HDF5: " + detail + ")"));
  }
  return check;
}

}  // namespace ionmsm
