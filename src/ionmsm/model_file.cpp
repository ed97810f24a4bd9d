// The Markov model file (HDF5): see model_file.hpp and docs/model-file.md. HDF5 C API only, as
// the counts file; no HDF5 type leaks into the header.
#include "ionmsm/model_file.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/text.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm {

namespace {

struct H5Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Silences HDF5's automatic error printing while alive (errors become exceptions).
class Quiet {
 public:
  Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Quiet() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  Quiet(const Quiet&) = delete;
  Quiet& operator=(const Quiet&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

/// Owning identifier with its close function.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id_ < 0) {
      H5Eclear2(H5E_DEFAULT);
      throw H5Error(what);
    }
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&&) = delete;
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  operator hid_t() const { return id_; }
  herr_t close() {
    const herr_t s = close_(id_);
    id_ = H5I_INVALID_HID;
    return s;
  }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

template <class T>
hid_t mem_type() {
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
  else return H5T_NATIVE_INT64;
}
template <class T>
hid_t disk_type() {
  if constexpr (std::is_same_v<T, double>) return H5T_IEEE_F64LE;
  else return H5T_STD_I64LE;
}

Id string_type() {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose, "cannot create a string type");
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
    throw H5Error("cannot create a string type");
  return t;
}

/// 1-D (cols == 0) or 2-D row-major dataset.
template <class T>
void put(hid_t parent, const std::string& name, const std::vector<T>& v, hsize_t cols = 0) {
  const hsize_t dims[2] = {cols == 0 ? v.size() : v.size() / cols, cols};
  Id space(H5Screate_simple(cols == 0 ? 1 : 2, dims, nullptr), H5Sclose, "dataspace " + name);
  Id d(H5Dcreate2(parent, name.c_str(), disk_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT,
                  H5P_DEFAULT),
       H5Dclose, "cannot create dataset '" + name + "'");
  if (!v.empty() && H5Dwrite(d, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    throw H5Error("cannot write dataset '" + name + "'");
}

template <class T>
void put_attr(hid_t obj, const char* name, T value) {
  Id space(H5Screate(H5S_SCALAR), H5Sclose, "dataspace");
  Id a(H5Acreate2(obj, name, disk_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
       std::string("cannot create attribute '") + name + "'");
  if (H5Awrite(a, mem_type<T>(), &value) < 0)
    throw H5Error(std::string("cannot write attribute '") + name + "'");
}

void put_attr(hid_t obj, const char* name, const std::string& value) {
  Id type = string_type();
  Id space(H5Screate(H5S_SCALAR), H5Sclose, "dataspace");
  Id a(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
       std::string("cannot create attribute '") + name + "'");
  const char* p = value.c_str();
  if (H5Awrite(a, type, &p) < 0) throw H5Error(std::string("cannot write attribute '") + name + "'");
}

template <class T>
std::vector<T> get(hid_t parent, const std::string& name, hsize_t* rows = nullptr,
                   hsize_t* cols = nullptr) {
  Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "missing dataset '" + name + "'");
  Id space(H5Dget_space(d), H5Sclose, "dataspace of '" + name + "'");
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(space, dims, nullptr) < 0)
    throw H5Error("dataset '" + name + "' is not 1-D or 2-D");
  std::vector<T> v(static_cast<std::size_t>(dims[0] * (rank == 2 ? dims[1] : 1)));
  if (!v.empty() && H5Dread(d, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    throw H5Error("cannot read dataset '" + name + "'");
  if (rows) *rows = dims[0];
  if (cols) *cols = rank == 2 ? dims[1] : 0;
  return v;
}

template <class T>
T get_attr(hid_t obj, const char* name) {
  Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, std::string("missing attribute '") + name + "'");
  T value{};
  if (H5Aread(a, mem_type<T>(), &value) < 0)
    throw H5Error(std::string("cannot read attribute '") + name + "'");
  return value;
}

std::string get_string_attr(hid_t obj, const char* name) {
  Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, std::string("missing attribute '") + name + "'");
  Id file_type(H5Aget_type(a), H5Tclose, std::string("type of attribute '") + name + "'");
  Id type = string_type();
  if (H5Tget_class(file_type) == H5T_STRING) H5Tset_cset(type, H5Tget_cset(file_type));
  char* p = nullptr;
  if (H5Aread(a, type, &p) < 0 || !p)
    throw H5Error(std::string("attribute '") + name + "' is not a string");
  std::string s(p);
  H5free_memory(p);
  return s;
}

// ------------------------------------------------------------------ matrices

void put_csc(hid_t g, const std::string& prefix, Eigen::SparseMatrix<double> m) {
  m.makeCompressed();
  const Eigen::Index nnz = m.nonZeros();
  std::vector<double> data(m.valuePtr(), m.valuePtr() + nnz);
  std::vector<std::int64_t> indices(m.innerIndexPtr(), m.innerIndexPtr() + nnz);
  std::vector<std::int64_t> indptr(m.outerIndexPtr(), m.outerIndexPtr() + m.cols() + 1);
  put(g, prefix + "_data", data);
  put(g, prefix + "_indices", indices);
  put(g, prefix + "_indptr", indptr);
}

Eigen::SparseMatrix<double> get_csc(hid_t g, const std::string& prefix, Eigen::Index n) {
  const auto data = get<double>(g, prefix + "_data");
  const auto indices = get<std::int64_t>(g, prefix + "_indices");
  const auto indptr = get<std::int64_t>(g, prefix + "_indptr");
  if (indptr.size() != static_cast<std::size_t>(n) + 1 || indices.size() != data.size() ||
      indptr.back() != static_cast<std::int64_t>(data.size()))
    throw H5Error("inconsistent sparse matrix '" + prefix + "'");
  std::vector<Eigen::Triplet<double>> t;
  for (Eigen::Index j = 0; j < n; ++j)
    for (std::int64_t p = indptr[static_cast<std::size_t>(j)];
         p < indptr[static_cast<std::size_t>(j) + 1]; ++p) {
      const std::int64_t i = indices[static_cast<std::size_t>(p)];
      if (i < 0 || i >= n) throw H5Error("row index out of range in '" + prefix + "'");
      t.emplace_back(static_cast<int>(i), static_cast<int>(j), data[static_cast<std::size_t>(p)]);
    }
  Eigen::SparseMatrix<double> m(n, n);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}

/// Complex matrix (rows x cols, column-major in Eigen) as two row-major real datasets.
void put_complex(hid_t g, const std::string& name, const Eigen::MatrixXcd& m) {
  std::vector<double> re, im;
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) {
      re.push_back(m(i, j).real());
      im.push_back(m(i, j).imag());
    }
  const auto cols = static_cast<hsize_t>(m.cols());
  put(g, name + "_re", re, cols);
  put(g, name + "_im", im, cols);
}

Eigen::MatrixXcd get_complex(hid_t g, const std::string& name) {
  hsize_t rows = 0, cols = 0, r2 = 0, c2 = 0;
  const auto re = get<double>(g, name + "_re", &rows, &cols);
  const auto im = get<double>(g, name + "_im", &r2, &c2);
  if (rows != r2 || cols != c2) throw H5Error("'" + name + "_re' and '_im' differ in shape");
  const hsize_t nc = cols == 0 ? 1 : cols;
  Eigen::MatrixXcd m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(nc));
  for (hsize_t i = 0; i < rows; ++i)
    for (hsize_t j = 0; j < nc; ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = {re[i * nc + j],
                                                                       im[i * nc + j]};
  return m;
}

// ------------------------------------------------------------------ lags

void check_lag(const ModelLag& l, std::int64_t nsites) {
  const auto n = static_cast<Eigen::Index>(l.kept_sites.size());
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument("write_model_file: lag " + std::to_string(l.lag_steps) + ": " +
                                what);
  };
  if (l.lag_steps <= 0 || !(l.lag_time > 0.0)) bad("lag_steps and lag_time must be > 0");
  if (l.transition_matrix.rows() != n || l.transition_matrix.cols() != n || l.stationary.size() != n)
    bad("transition matrix / stationary distribution do not match the kept sites");
  for (std::int64_t s : l.kept_sites)
    if (s < 0 || s >= nsites) bad("kept site " + std::to_string(s) + " out of range");
  const Eigen::Index k = l.eigenvalues.size();
  if (l.right_vectors.rows() != n || l.right_vectors.cols() != k)
    bad("right eigenvectors must be states x eigenvalues");
  if (l.left_vectors.size() != 0 && (l.left_vectors.rows() != n || l.left_vectors.cols() != k))
    bad("left eigenvectors must be states x eigenvalues, or empty");
}

void write_lag(hid_t lags, const ModelLag& l) {
  const std::string name = std::to_string(l.lag_steps);
  Id g(H5Gcreate2(lags, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
       "cannot create group '/lags/" + name + "'");
  put_attr(g, "lag_steps", l.lag_steps);
  put_attr(g, "lag_time", l.lag_time);
  put_attr(g, "n_states", static_cast<std::int64_t>(l.kept_sites.size()));
  put(g, "kept_sites", l.kept_sites);
  put_csc(g, "T", l.transition_matrix);
  put(g, "stationary", std::vector<double>(l.stationary.data(),
                                           l.stationary.data() + l.stationary.size()));
  if (l.eigenvalues.size() > 0) {  // absent when the eigenvectors failed
    put_complex(g, "eigenvalues", l.eigenvalues);
    put_complex(g, "right_vectors", l.right_vectors);
  }
  if (l.left_vectors.size() > 0) put_complex(g, "left_vectors", l.left_vectors);
  if (l.has_diffusion) {
    std::vector<double> d;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) d.push_back(l.D_tensor(i, j));
    put(g, "D_tensor", d, 3);
  }
}

ModelLag read_lag(hid_t lags, const std::string& name) {
  Id g(H5Gopen2(lags, name.c_str(), H5P_DEFAULT), H5Gclose, "missing group '/lags/" + name + "'");
  ModelLag l;
  l.lag_steps = get_attr<std::int64_t>(g, "lag_steps");
  l.lag_time = get_attr<double>(g, "lag_time");
  l.kept_sites = get<std::int64_t>(g, "kept_sites");
  const auto n = static_cast<Eigen::Index>(l.kept_sites.size());
  l.transition_matrix = get_csc(g, "T", n);
  const auto pi = get<double>(g, "stationary");
  if (pi.size() != l.kept_sites.size()) throw H5Error("'stationary' does not match 'kept_sites'");
  l.stationary = Eigen::Map<const Eigen::VectorXd>(pi.data(), n);
  if (H5Lexists(g, "eigenvalues_re", H5P_DEFAULT) > 0) {
    l.eigenvalues = get_complex(g, "eigenvalues").col(0);
    l.right_vectors = get_complex(g, "right_vectors");
  } else {
    l.right_vectors.resize(n, 0);
  }
  if (H5Lexists(g, "left_vectors_re", H5P_DEFAULT) > 0)
    l.left_vectors = get_complex(g, "left_vectors");
  if (H5Lexists(g, "D_tensor", H5P_DEFAULT) > 0) {
    const auto d = get<double>(g, "D_tensor");
    if (d.size() != 9) throw H5Error("'D_tensor' is not 3 x 3");
    l.has_diffusion = true;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) l.D_tensor(i, j) = d[static_cast<std::size_t>(3 * i + j)];
  }
  return l;
}

void write_selected(hid_t file, const ModelData& m) {
  Id g(H5Gcreate2(file, "selected", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
       "cannot create group '/selected'");
  const ModelLag* sel = nullptr;
  for (const auto& l : m.lags)
    if (l.lag_steps == m.selected_lag_steps) sel = &l;
  put_attr(g, "lag_steps", sel->lag_steps);
  put_attr(g, "lag_time", sel->lag_time);
  std::vector<std::int64_t> from, to;
  std::vector<double> rate;
  for (int j = 0; j < m.hop_rates.outerSize(); ++j)
    for (Eigen::SparseMatrix<double>::InnerIterator it(m.hop_rates, j); it; ++it) {
      from.push_back(sel->kept_sites[static_cast<std::size_t>(it.col())]);
      to.push_back(sel->kept_sites[static_cast<std::size_t>(it.row())]);
      rate.push_back(it.value());
    }
  put(g, "hop_from_site", from);
  put(g, "hop_to_site", to);
  put(g, "hop_rate", rate);
}

void read_selected(hid_t file, ModelData& m) {
  Id g(H5Gopen2(file, "selected", H5P_DEFAULT), H5Gclose, "missing group '/selected'");
  const ModelLag* sel = nullptr;
  for (const auto& l : m.lags)
    if (l.lag_steps == m.selected_lag_steps) sel = &l;
  if (!sel) throw H5Error("the selected lag is not among /lags");
  const auto from = get<std::int64_t>(g, "hop_from_site");
  const auto to = get<std::int64_t>(g, "hop_to_site");
  const auto rate = get<double>(g, "hop_rate");
  if (from.size() != rate.size() || to.size() != rate.size())
    throw H5Error("hop_from_site, hop_to_site and hop_rate differ in length");
  std::vector<std::int64_t> state(static_cast<std::size_t>(m.nsites), -1);
  for (std::size_t s = 0; s < sel->kept_sites.size(); ++s)
    state[static_cast<std::size_t>(sel->kept_sites[s])] = static_cast<std::int64_t>(s);
  auto state_of = [&](std::int64_t site) {
    if (site < 0 || site >= m.nsites || state[static_cast<std::size_t>(site)] < 0)
      throw H5Error("hop rate site " + std::to_string(site) + " is not a kept site");
    return static_cast<int>(state[static_cast<std::size_t>(site)]);
  };
  std::vector<Eigen::Triplet<double>> t;
  for (std::size_t e = 0; e < rate.size(); ++e) t.emplace_back(state_of(to[e]), state_of(from[e]), rate[e]);
  const auto n = static_cast<Eigen::Index>(sel->kept_sites.size());
  m.hop_rates.resize(n, n);
  m.hop_rates.setFromTriplets(t.begin(), t.end());
}

}  // namespace

Eigen::SparseMatrix<double> hop_rate_matrix(const Eigen::SparseMatrix<double>& transition_matrix,
                                            double lag_time) {
  if (!std::isfinite(lag_time) || !(lag_time > 0.0))
    throw std::invalid_argument("hop_rate_matrix: lag_time must be finite and > 0, got " +
                                text::num(lag_time));
  if (transition_matrix.rows() != transition_matrix.cols())
    throw std::invalid_argument("hop_rate_matrix: the transition matrix must be square");
  std::vector<Eigen::Triplet<double>> t;
  for (int j = 0; j < transition_matrix.outerSize(); ++j)
    for (Eigen::SparseMatrix<double>::InnerIterator it(transition_matrix, j); it; ++it)
      if (it.row() != it.col() && it.value() != 0.0)
        t.emplace_back(static_cast<int>(it.row()), static_cast<int>(it.col()),
                       it.value() / lag_time);
  Eigen::SparseMatrix<double> k(transition_matrix.rows(), transition_matrix.cols());
  k.setFromTriplets(t.begin(), t.end());
  return k;
}

Spectrum model_eigenvectors(const MarkovModel& model, Estimator estimator, int n_vectors) {
  const auto n = static_cast<std::size_t>(model.transition_matrix.rows());
  SpectrumOptions so;
  so.num_eigenvalues = n_vectors;
  so.right_vectors = true;
  so.left_vectors = true;
  Spectrum sp;
  if (estimator == Estimator::Reversible || exactly_balanced(model)) {
    sp = compute_reversible_spectrum(model.transition_matrix, model.stationary, so);
  } else if (n <= kModelDenseVectorsMaxSites) {
    so.method = SpectrumMethod::Dense;
    sp = compute_spectrum(Eigen::MatrixXd(model.transition_matrix), so);
  } else {
    so.left_vectors = false;  // the sparse general solver gives right vectors only
    sp = compute_spectrum(model.transition_matrix, so);
  }
  const Eigen::Index k = std::min<Eigen::Index>(n_vectors, sp.eigenvalues.size());
  sp.eigenvalues = sp.eigenvalues.head(k).eval();
  sp.right_vectors = sp.right_vectors.leftCols(k).eval();
  if (sp.left_vectors.size() > 0) sp.left_vectors = sp.left_vectors.leftCols(k).eval();
  return sp;
}

void write_model_file(const std::string& path, const ModelData& m) {
  bool selected_found = m.selected_lag_steps == 0;
  for (const auto& l : m.lags) {
    check_lag(l, m.nsites);
    if (l.lag_steps == m.selected_lag_steps) {
      selected_found = true;
      const auto n = static_cast<Eigen::Index>(l.kept_sites.size());
      if (m.hop_rates.rows() != n || m.hop_rates.cols() != n)
        throw std::invalid_argument("write_model_file: hop rates must be states x states of "
                                    "the selected lag");
    }
  }
  if (!selected_found)
    throw std::invalid_argument("write_model_file: selected lag " +
                                std::to_string(m.selected_lag_steps) + " is not among the lags");
  Quiet quiet;
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  try {
    Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
            "cannot create '" + tmp + "'");
    put_attr(file, "format", std::string(kModelFormatTag));
    put_attr(file, "format_version", static_cast<std::int64_t>(kModelFormatVersion));
    put_attr(file, "ionmsm_version", std::string(kVersion));
    put_attr(file, "source", m.source);
    put_attr(file, "estimator",
             std::string(m.estimator == Estimator::Reversible ? "rev" : "nonrev"));
    put_attr(file, "length_unit", m.length_unit);
    put_attr(file, "time_unit", m.time_unit);
    put_attr(file, "nsites", m.nsites);
    put_attr(file, "selected_lag_steps", m.selected_lag_steps);
    std::vector<std::int64_t> lag_steps;
    for (const auto& l : m.lags) lag_steps.push_back(l.lag_steps);
    put(file, "lag_steps", lag_steps);
    {
      Id lags(H5Gcreate2(file, "lags", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
              "cannot create group '/lags'");
      for (const auto& l : m.lags) write_lag(lags, l);
    }
    if (m.selected_lag_steps != 0) write_selected(file, m);
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 || file.close() < 0)
      throw H5Error("cannot flush and close the file");
  } catch (const H5Error& e) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write model file '" + path + "': " + e.what());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write model file '" + path + "': cannot rename '" + tmp +
                             "' onto it: " + std::strerror(err));
  }
}

ModelData read_model_file(const std::string& path) {
  Quiet quiet;
  try {
    Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
            "cannot open it as HDF5");
    if (H5Aexists(file, "format") <= 0 || get_string_attr(file, "format") != kModelFormatTag)
      throw H5Error(std::string("it is not a model file (root attribute format != '") +
                    kModelFormatTag + "')");
    const auto version = get_attr<std::int64_t>(file, "format_version");
    if (version != kModelFormatVersion)
      throw H5Error("format_version " + std::to_string(version) + " is not supported (this "
                    "ionmsm reads version " + std::to_string(kModelFormatVersion) + ")");
    ModelData m;
    m.source = get_string_attr(file, "source");
    m.estimator = get_string_attr(file, "estimator") == "rev" ? Estimator::Reversible
                                                              : Estimator::NonReversible;
    m.length_unit = get_string_attr(file, "length_unit");
    m.time_unit = get_string_attr(file, "time_unit");
    m.nsites = get_attr<std::int64_t>(file, "nsites");
    m.selected_lag_steps = get_attr<std::int64_t>(file, "selected_lag_steps");
    Id lags(H5Gopen2(file, "lags", H5P_DEFAULT), H5Gclose, "missing group '/lags'");
    for (std::int64_t l : get<std::int64_t>(file, "lag_steps"))
      m.lags.push_back(read_lag(lags, std::to_string(l)));
    if (m.selected_lag_steps != 0) read_selected(file, m);
    return m;
  } catch (const H5Error& e) {
    throw std::runtime_error("cannot read model file '" + path + "': " + e.what());
  }
}

}  // namespace ionmsm
