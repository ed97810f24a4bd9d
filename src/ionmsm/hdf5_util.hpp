#pragma once
// HDF5 helpers shared by the counts file (reader, writer, checker) and the model file
// (internal to the core library: only .cpp files of src/ionmsm include this header): error
// handling, owning handles (they close every HDF5 object on every path, also when an exception
// leaves the scope), types, writers of groups, datasets and attributes, and plain readers
// (hdf5_util.cpp). Failures throw H5Failure; each file format turns it into a message naming
// the file.
#include <hdf5.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace ionmsm::hdf5_util {

/// An HDF5 failure inside the helpers; the public functions turn it into a message naming the
/// file.
struct H5Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Turns off HDF5's automatic error printing while alive and restores the previous handler.
class QuietHdf5 {
 public:
  QuietHdf5() {
    if (H5Eget_auto2(H5E_DEFAULT, &func_, &data_) < 0) {
      func_ = nullptr;
      data_ = nullptr;
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

/// The description of the innermost error on HDF5's default error stack ("" if none).
inline std::string hdf5_error_detail() {
  std::string detail;
  auto walker = [](unsigned n, const H5E_error2_t* err, void* client) -> herr_t {
    if (n == 0 && err && err->desc) *static_cast<std::string*>(client) = err->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walker, &detail);
  return detail;
}

[[noreturn]] inline void h5fail(const std::string& what) {
  std::string detail = hdf5_error_detail();
  H5Eclear2(H5E_DEFAULT);
  if (!detail.empty()) throw H5Failure(what + " (HDF5: " + detail + ")");
  throw H5Failure(what);
}

/// Owning HDF5 identifier with the matching close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  /// Closes now and reports failure (for the file, whose close flushes data).
  herr_t close() {
    herr_t status = 0;
    if (id_ >= 0 && close_) status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

inline Handle checked(hid_t id, Handle::Closer close, const std::string& what) {
  if (id < 0) h5fail(what);
  return Handle(id, close);
}

/// The HDF5 type of T in memory (native) or in the file (little-endian).
template <class T>
hid_t hdf5_type(bool in_file) {
  using std::is_same_v;
  if constexpr (is_same_v<T, double>) return in_file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
  else if constexpr (is_same_v<T, std::int32_t>) return in_file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
  else if constexpr (is_same_v<T, std::int64_t>) return in_file ? H5T_STD_I64LE : H5T_NATIVE_INT64;
  else if constexpr (is_same_v<T, std::uint64_t>)
    return in_file ? H5T_STD_U64LE : H5T_NATIVE_UINT64;
  else static_assert(sizeof(T) == 0, "unsupported element type");
}

template <class T>
hid_t native_type() {
  return hdf5_type<T>(false);
}

template <class T>
hid_t file_type() {
  return hdf5_type<T>(true);
}

inline Handle vlen_string_type() {
  Handle t = checked(H5Tcopy(H5T_C_S1), H5Tclose, "cannot create string type");
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
    h5fail("cannot create string type");
  return t;
}

/// File access properties: HDF5 file locking stays on, but a file system that does not support
/// locks (some NFS and Lustre mounts) does not make opening fail.
inline Handle file_access_plist() {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create property list");
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
  H5Pset_file_locking(fapl, true, true);
#endif
  return fapl;
}

/// Whether the error on HDF5's default error stack is a checksum mismatch (Fletcher-32 of a
/// chunked dataset, or of the file's metadata): the bytes on disk changed after they were
/// written. Call before the stack is cleared.
inline bool hdf5_checksum_error() {
  bool found = false;
  auto walker = [](unsigned, const H5E_error2_t* err, void* client) -> herr_t {
    if (err && err->desc) {
      std::string d = err->desc;
      for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (d.find("checksum") != std::string::npos || d.find("fletcher") != std::string::npos)
        *static_cast<bool*>(client) = true;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walker, &found);
  return found;
}

// ------------------------------------------------------------------------------- writing

/// How a dataset is stored: Checksummed (the counts file) is chunked with HDF5's Fletcher-32
/// checksum filter once it has an element, and compressed when large (hdf5_util.cpp);
/// Contiguous (the model file) uses HDF5's default layout.
enum class Storage { Checksummed, Contiguous };

/// Creation properties (H5P_DATASET_CREATE, H5P_GROUP_CREATE or H5P_FILE_CREATE) without
/// HDF5's object timestamps, so that the same data always gives the same bytes (cmp works).
Handle untimed_create_plist(hid_t plist_class);

/// Creation properties of a Checksummed dataset of shape dims[0 .. rank) (untimed).
/// Variable-length strings cannot take the checksum filter (HDF5 refuses it): checksum = false.
Handle dataset_create_plist(int rank, const hsize_t* dims, bool checksum = true);

Handle make_group(hid_t parent, const char* name);

/// Writes a 1-D (cols == 0) or 2-D (rows x cols) dataset from contiguous row-major data.
template <class T>
void write_dataset(hid_t parent, const char* name, const T* data, hsize_t rows, hsize_t cols = 0,
                   Storage storage = Storage::Checksummed) {
  const int rank = cols == 0 ? 1 : 2;
  const hsize_t dims[2] = {rows, cols};
  Handle space = checked(H5Screate_simple(rank, dims, nullptr), H5Sclose,
                         std::string("cannot create dataspace for '") + name + "'");
  Handle plist = storage == Storage::Checksummed ? dataset_create_plist(rank, dims)
                                                 : untimed_create_plist(H5P_DATASET_CREATE);
  Handle dset = checked(H5Dcreate2(parent, name, file_type<T>(), space, H5P_DEFAULT, plist,
                                   H5P_DEFAULT),
                        H5Dclose, std::string("cannot create dataset '") + name + "'");
  const hsize_t n = rows * (cols == 0 ? 1 : cols);
  if (n > 0 && H5Dwrite(dset, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    h5fail(std::string("cannot write dataset '") + name + "'");
}

template <class T>
void write_dataset(hid_t parent, const char* name, const std::vector<T>& v, hsize_t cols = 0,
                   Storage storage = Storage::Checksummed) {
  const hsize_t rows = cols == 0 ? v.size() : v.size() / cols;
  write_dataset(parent, name, v.data(), rows, cols, storage);
}

void write_string_dataset(hid_t parent, const char* name, const std::vector<std::string>& v);

template <class T>
void write_attribute(hid_t obj, const char* name, T value) {
  Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, "cannot create dataspace");
  Handle attr = checked(H5Acreate2(obj, name, file_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT),
                        H5Aclose, std::string("cannot create attribute '") + name + "'");
  if (H5Awrite(attr, native_type<T>(), &value) < 0)
    h5fail(std::string("cannot write attribute '") + name + "'");
}

void write_attribute(hid_t obj, const char* name, const std::string& value);

// ------------------------------------------------------------------------------- reading

/// A fixed-length HDF5 string of `size` bytes without its terminator and space padding.
std::string trim_fixed(const char* p, std::size_t size);

/// Reads the string held by the scalar attribute `attr` whose file type is `type` (variable or
/// fixed length). False when HDF5 fails; the error then stays on HDF5's stack for the caller.
bool read_string_value(hid_t attr, hid_t type, std::string& out);

/// The string attribute `name` of obj.
std::string read_string_attribute(hid_t obj, const char* name);

/// The numeric attribute `name` of obj, converted to T.
template <class T>
T read_attribute(hid_t obj, const char* name) {
  Handle attr = checked(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose,
                        std::string("missing attribute '") + name + "'");
  T value{};
  if (H5Aread(attr, native_type<T>(), &value) < 0)
    h5fail(std::string("cannot read attribute '") + name + "'");
  return value;
}

/// Whether the link `name` exists in `parent` (false also when HDF5 cannot tell).
inline bool link_exists(hid_t parent, const char* name) {
  const htri_t has = H5Lexists(parent, name, H5P_DEFAULT);
  if (has < 0) H5Eclear2(H5E_DEFAULT);
  return has > 0;
}

/// Reads a 1-D or 2-D numeric dataset in full, converted to T (row-major); its shape goes to
/// rows and cols (cols = 0 for 1-D).
template <class T>
std::vector<T> read_dataset(hid_t parent, const std::string& name, hsize_t* rows = nullptr,
                            hsize_t* cols = nullptr) {
  Handle dset = checked(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose,
                        "missing dataset '" + name + "'");
  Handle space = checked(H5Dget_space(dset), H5Sclose, "dataspace of '" + name + "'");
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(space, dims, nullptr) < 0)
    h5fail("dataset '" + name + "' is not 1-D or 2-D");
  std::vector<T> v(static_cast<std::size_t>(dims[0] * (rank == 2 ? dims[1] : 1)));
  if (!v.empty() && H5Dread(dset, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    h5fail("cannot read dataset '" + name + "'");
  if (rows) *rows = dims[0];
  if (cols) *cols = rank == 2 ? dims[1] : 0;
  return v;
}

}  // namespace ionmsm::hdf5_util
