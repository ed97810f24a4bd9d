// Unit tests of src/ionmsm/model_file.hpp: the hop rate matrix, the eigenvectors stored in the
// model file, and the file's round trip (every field read back exactly, bad files refused).
#include "ionmsm/model_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#if __has_include(<hdf5.h>)
#include <hdf5.h>
#elif __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#error "hdf5.h not found"
#endif

#include "msm_test_util.hpp"

namespace fs = std::filesystem;
using namespace msm_test;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("ionmsm_model_file_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::size_t n_entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path_), fs::directory_iterator{}));
  }

 private:
  fs::path path_;
};

/// A non-reversible model from random counts on n sites (every site kept: dense counts).
ionmsm::MarkovModel random_model(int n, std::uint64_t seed, std::int64_t lag_steps) {
  Rng rng(seed);
  Eigen::MatrixXd c = random_counts(n, rng, 0.0, 50);
  for (int i = 0; i < n; ++i) c(i, i) += 1.0;
  return ionmsm::estimate_markov_model(lag_from_matrix(lag_steps, c), n, ionmsm::MsmOptions{});
}

ionmsm::ModelLag model_lag(const ionmsm::MarkovModel& mm, double lag_time, std::int64_t offset) {
  ionmsm::ModelLag l;
  l.lag_steps = mm.lag_steps;
  l.lag_time = lag_time;
  for (std::size_t s : mm.connectivity.kept) l.kept_sites.push_back(static_cast<std::int64_t>(s) + offset);
  l.transition_matrix = mm.transition_matrix;
  l.stationary = mm.stationary;
  const ionmsm::Spectrum sp = ionmsm::model_eigenvectors(mm, mm.estimator, 4);
  l.eigenvalues = sp.eigenvalues;
  l.right_vectors = sp.right_vectors;
  l.left_vectors = sp.left_vectors;
  return l;
}

}  // namespace

// k(i, j) = T(i, j) / tau off the diagonal: T = [[.5,.2,0],[.5,.7,.4],[0,.1,.6]], tau = 2.
TEST(ModelFile, HopRateMatrix) {
  Eigen::MatrixXd t(3, 3);
  t << 0.5, 0.2, 0.0, 0.5, 0.7, 0.4, 0.0, 0.1, 0.6;
  const Eigen::SparseMatrix<double> k = ionmsm::hop_rate_matrix(t.sparseView(), 2.0);
  Eigen::MatrixXd want(3, 3);
  want << 0.0, 0.1, 0.0, 0.25, 0.0, 0.2, 0.0, 0.05, 0.0;
  EXPECT_LT((Eigen::MatrixXd(k) - want).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_EQ(k.nonZeros(), 4);
  EXPECT_THROW(ionmsm::hop_rate_matrix(t.sparseView(), 0.0), std::invalid_argument);
  EXPECT_THROW(ionmsm::hop_rate_matrix(Eigen::MatrixXd(2, 3).sparseView(), 1.0),
               std::invalid_argument);
}

// Right and left eigenvectors satisfy M r = lambda r, l^T M = lambda l^T, l^T r = 1, for a
// general (non-reversible) model and a reversible one (symmetric route).
TEST(ModelFile, EigenvectorsOfGeneralAndReversibleModels) {
  for (auto est : {ionmsm::Estimator::NonReversible, ionmsm::Estimator::Reversible}) {
    Rng rng(7);
    Eigen::MatrixXd c = random_counts(12, rng, 0.3, 40);
    for (int i = 0; i < 12; ++i) c(i, i) += 1.0;
    ionmsm::MsmOptions o;
    o.estimator = est;
    const ionmsm::MarkovModel mm = ionmsm::estimate_markov_model(lag_from_matrix(1, c), 12, o);
    const ionmsm::Spectrum sp = ionmsm::model_eigenvectors(mm, est, 5);
    ASSERT_EQ(sp.eigenvalues.size(), 5);
    ASSERT_EQ(sp.right_vectors.cols(), 5);
    ASSERT_EQ(sp.left_vectors.cols(), 5);
    const Eigen::MatrixXcd m = Eigen::MatrixXd(mm.transition_matrix).cast<std::complex<double>>();
    EXPECT_NEAR(std::abs(sp.eigenvalues(0) - 1.0), 0.0, 1e-10);
    for (int k = 0; k < 5; ++k) {
      const auto lam = sp.eigenvalues(k);
      const Eigen::VectorXcd r = sp.right_vectors.col(k), l = sp.left_vectors.col(k);
      EXPECT_LT((m * r - lam * r).norm(), 1e-9) << k;
      EXPECT_LT((m.transpose() * l - lam * l).norm(), 1e-9) << k;
      EXPECT_NEAR(std::abs((l.transpose() * r).value() - 1.0), 0.0, 1e-9) << k;
    }
  }
}

// Every field is read back exactly; the selected lag's hop rates come back on its states.
TEST(ModelFile, RoundTrip) {
  TempDir dir;
  ionmsm::ModelData m;
  m.source = "run/counts.h5";
  m.estimator = ionmsm::Estimator::NonReversible;
  m.length_unit = "Angstrom";
  m.time_unit = "ps";
  m.nsites = 20;
  const ionmsm::MarkovModel a = random_model(8, 1, 10), b = random_model(6, 2, 20);
  m.lags.push_back(model_lag(a, 0.01, 0));
  m.lags.push_back(model_lag(b, 0.02, 10));  // sites 10..15 of the file
  m.lags[1].has_diffusion = true;
  m.lags[1].D_tensor << 1, 2, 3, 2, 5, 6, 3, 6, 9;
  m.lags[1].left_vectors.resize(0, 0);  // a lag without left vectors
  m.selected_lag_steps = 20;
  m.hop_rates = ionmsm::hop_rate_matrix(b.transition_matrix, 0.02);
  const std::string path = dir.file("model.h5");
  ionmsm::write_model_file(path, m);
  EXPECT_EQ(dir.n_entries(), 1u);  // no temporary file left
  const ionmsm::ModelData r = ionmsm::read_model_file(path);
  EXPECT_EQ(r.source, m.source);
  EXPECT_EQ(r.estimator, m.estimator);
  EXPECT_EQ(r.length_unit, "Angstrom");
  EXPECT_EQ(r.time_unit, "ps");
  EXPECT_EQ(r.nsites, 20);
  EXPECT_EQ(r.selected_lag_steps, 20);
  ASSERT_EQ(r.lags.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const ionmsm::ModelLag &w = m.lags[i], &g = r.lags[i];
    EXPECT_EQ(g.lag_steps, w.lag_steps);
    EXPECT_EQ(g.lag_time, w.lag_time);
    EXPECT_EQ(g.kept_sites, w.kept_sites);
    EXPECT_EQ(Eigen::MatrixXd(g.transition_matrix), Eigen::MatrixXd(w.transition_matrix));
    EXPECT_EQ(g.stationary, w.stationary);
    EXPECT_EQ(g.eigenvalues, w.eigenvalues);
    EXPECT_EQ(g.right_vectors, w.right_vectors);
    EXPECT_EQ(g.left_vectors.size(), w.left_vectors.size());
    if (w.left_vectors.size() > 0) EXPECT_EQ(g.left_vectors, w.left_vectors);
    EXPECT_EQ(g.has_diffusion, w.has_diffusion);
    EXPECT_EQ(g.D_tensor, w.D_tensor);
  }
  EXPECT_EQ(Eigen::MatrixXd(r.hop_rates), Eigen::MatrixXd(m.hop_rates));
  // the file's CSC columns sum to 1 (column-stochastic) when read back
  for (int j = 0; j < 8; ++j)
    EXPECT_NEAR(Eigen::MatrixXd(r.lags[0].transition_matrix).col(j).sum(), 1.0, 1e-12);
}

TEST(ModelFile, BadInputsRefused) {
  TempDir dir;
  ionmsm::ModelData m;
  m.nsites = 8;
  m.lags.push_back(model_lag(random_model(8, 3, 5), 1.0, 0));
  m.selected_lag_steps = 7;  // not among the lags
  EXPECT_THROW(ionmsm::write_model_file(dir.file("a.h5"), m), std::invalid_argument);
  m.selected_lag_steps = 0;
  m.lags[0].kept_sites[0] = 8;  // out of range
  EXPECT_THROW(ionmsm::write_model_file(dir.file("a.h5"), m), std::invalid_argument);
  EXPECT_EQ(dir.n_entries(), 0u);
  // not HDF5; HDF5 with another tag; the right tag with an unknown version
  { std::ofstream(dir.file("text.h5")) << "not hdf5\n"; }
  EXPECT_THROW(ionmsm::read_model_file(dir.file("text.h5")), std::runtime_error);
  for (const char* tag : {"ionmsm-counts", "ionmsm-model"}) {
    const std::string p = dir.file(std::string(tag) + ".h5");
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &tag);
    const std::int64_t version = 99;
    const hid_t v = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(v, H5T_NATIVE_INT64, &version);
    H5Aclose(v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(st);
    H5Fclose(f);
    try {
      ionmsm::read_model_file(p);
      ADD_FAILURE() << "no exception for " << tag;
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string(tag) == "ionmsm-model" ? "format_version 99" : "not a model"),
                std::string::npos)
          << msg;
    }
  }
}
