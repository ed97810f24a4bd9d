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
#include <utility>
#include <vector>

#include "ionmsm/hdf5_util.hpp"
#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/text.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm {

namespace {

using namespace hdf5_util;

/// A model file dataset: HDF5's default layout (no chunking, no checksum filter).
template <class T>
void put(hid_t parent, const std::string& name, const std::vector<T>& v, hsize_t cols = 0) {
  write_dataset(parent, name.c_str(), v, cols, Storage::Contiguous);
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
  const auto data = read_dataset<double>(g, prefix + "_data");
  const auto indices = read_dataset<std::int64_t>(g, prefix + "_indices");
  const auto indptr = read_dataset<std::int64_t>(g, prefix + "_indptr");
  if (indptr.size() != static_cast<std::size_t>(n) + 1 || indices.size() != data.size() ||
      indptr.back() != static_cast<std::int64_t>(data.size()))
    throw H5Failure("inconsistent sparse matrix '" + prefix + "'");
  std::vector<Eigen::Triplet<double>> t;
  for (Eigen::Index j = 0; j < n; ++j)
    for (std::int64_t p = indptr[static_cast<std::size_t>(j)];
         p < indptr[static_cast<std::size_t>(j) + 1]; ++p) {
      const std::int64_t i = indices[static_cast<std::size_t>(p)];
      if (i < 0 || i >= n) throw H5Failure("row index out of range in '" + prefix + "'");
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
  const auto re = read_dataset<double>(g, name + "_re", &rows, &cols);
  const auto im = read_dataset<double>(g, name + "_im", &r2, &c2);
  if (rows != r2 || cols != c2) throw H5Failure("'" + name + "_re' and '_im' differ in shape");
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
  Handle g = make_group(lags, name.c_str());
  write_attribute(g, "lag_steps", l.lag_steps);
  write_attribute(g, "lag_time", l.lag_time);
  write_attribute(g, "n_states", static_cast<std::int64_t>(l.kept_sites.size()));
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
  Handle g = checked(H5Gopen2(lags, name.c_str(), H5P_DEFAULT), H5Gclose,
                     "missing group '/lags/" + name + "'");
  ModelLag l;
  l.lag_steps = read_attribute<std::int64_t>(g, "lag_steps");
  l.lag_time = read_attribute<double>(g, "lag_time");
  l.kept_sites = read_dataset<std::int64_t>(g, "kept_sites");
  const auto n = static_cast<Eigen::Index>(l.kept_sites.size());
  l.transition_matrix = get_csc(g, "T", n);
  const auto pi = read_dataset<double>(g, "stationary");
  if (pi.size() != l.kept_sites.size()) throw H5Failure("'stationary' does not match 'kept_sites'");
  l.stationary = Eigen::Map<const Eigen::VectorXd>(pi.data(), n);
  if (link_exists(g, "eigenvalues_re")) {
    l.eigenvalues = get_complex(g, "eigenvalues").col(0);
    l.right_vectors = get_complex(g, "right_vectors");
  } else {
    l.right_vectors.resize(n, 0);
  }
  if (link_exists(g, "left_vectors_re"))
    l.left_vectors = get_complex(g, "left_vectors");
  if (link_exists(g, "D_tensor")) {
    const auto d = read_dataset<double>(g, "D_tensor");
    if (d.size() != 9) throw H5Failure("'D_tensor' is not 3 x 3");
    l.has_diffusion = true;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) l.D_tensor(i, j) = d[static_cast<std::size_t>(3 * i + j)];
  }
  return l;
}

void write_selected(hid_t file, const ModelData& m) {
  Handle g = make_group(file, "selected");
  const ModelLag* sel = nullptr;
  for (const auto& l : m.lags)
    if (l.lag_steps == m.selected_lag_steps) sel = &l;
  write_attribute(g, "lag_steps", sel->lag_steps);
  write_attribute(g, "lag_time", sel->lag_time);
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
  Handle g =
      checked(H5Gopen2(file, "selected", H5P_DEFAULT), H5Gclose, "missing group '/selected'");
  const ModelLag* sel = nullptr;
  for (const auto& l : m.lags)
    if (l.lag_steps == m.selected_lag_steps) sel = &l;
  if (!sel) throw H5Failure("the selected lag is not among /lags");
  const auto from = read_dataset<std::int64_t>(g, "hop_from_site");
  const auto to = read_dataset<std::int64_t>(g, "hop_to_site");
  const auto rate = read_dataset<double>(g, "hop_rate");
  if (from.size() != rate.size() || to.size() != rate.size())
    throw H5Failure("hop_from_site, hop_to_site and hop_rate differ in length");
  std::vector<std::int64_t> state(static_cast<std::size_t>(m.nsites), -1);
  for (std::size_t s = 0; s < sel->kept_sites.size(); ++s)
    state[static_cast<std::size_t>(sel->kept_sites[s])] = static_cast<std::int64_t>(s);
  auto state_of = [&](std::int64_t site) {
    if (site < 0 || site >= m.nsites || state[static_cast<std::size_t>(site)] < 0)
      throw H5Failure("hop rate site " + std::to_string(site) + " is not a kept site");
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
  QuietHdf5 quiet;
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  try {
    Handle fcpl = untimed_create_plist(H5P_FILE_CREATE);
    Handle file = checked(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT),
                          H5Fclose, "cannot create '" + tmp + "'");
    write_attribute(file, "format", std::string(kModelFormatTag));
    write_attribute(file, "format_version", static_cast<std::int64_t>(kModelFormatVersion));
    write_attribute(file, "ionmsm_version", std::string(kVersion));
    write_attribute(file, "source", m.source);
    write_attribute(file, "estimator",
                    std::string(m.estimator == Estimator::Reversible ? "rev" : "nonrev"));
    write_attribute(file, "length_unit", m.length_unit);
    write_attribute(file, "time_unit", m.time_unit);
    write_attribute(file, "nsites", m.nsites);
    write_attribute(file, "selected_lag_steps", m.selected_lag_steps);
    std::vector<std::int64_t> lag_steps;
    for (const auto& l : m.lags) lag_steps.push_back(l.lag_steps);
    put(file, "lag_steps", lag_steps);
    {
      Handle lags = make_group(file, "lags");
      for (const auto& l : m.lags) write_lag(lags, l);
    }
    if (m.selected_lag_steps != 0) write_selected(file, m);
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 || file.close() < 0)
      throw H5Failure("cannot flush and close the file");
  } catch (const H5Failure& e) {
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
  QuietHdf5 quiet;
  try {
    Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                          "cannot open it as HDF5");
    if (H5Aexists(file, "format") <= 0 || read_string_attribute(file, "format") != kModelFormatTag)
      throw H5Failure(std::string("it is not a model file (root attribute format != '") +
                      kModelFormatTag + "')");
    const auto version = read_attribute<std::int64_t>(file, "format_version");
    if (version != kModelFormatVersion)
      throw H5Failure("format_version " + std::to_string(version) +
                      " is not supported (this ionmsm reads version " +
                      std::to_string(kModelFormatVersion) + ")");
    ModelData m;
    m.source = read_string_attribute(file, "source");
    m.estimator = read_string_attribute(file, "estimator") == "rev" ? Estimator::Reversible
                                                                    : Estimator::NonReversible;
    m.length_unit = read_string_attribute(file, "length_unit");
    m.time_unit = read_string_attribute(file, "time_unit");
    m.nsites = read_attribute<std::int64_t>(file, "nsites");
    m.selected_lag_steps = read_attribute<std::int64_t>(file, "selected_lag_steps");
    Handle lags = checked(H5Gopen2(file, "lags", H5P_DEFAULT), H5Gclose, "missing group '/lags'");
    for (std::int64_t l : read_dataset<std::int64_t>(file, "lag_steps"))
      m.lags.push_back(read_lag(lags, std::to_string(l)));
    if (m.selected_lag_steps != 0) read_selected(file, m);
    return m;
  } catch (const H5Failure& e) {
    throw std::runtime_error("cannot read model file '" + path + "': " + e.what());
  }
}

}  // namespace ionmsm
