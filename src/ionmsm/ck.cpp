// Chapman-Kolmogorov test: see ck.hpp.
#include "ionmsm/spectra.hpp"  // first: see there
#include "ionmsm/ck.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ionmsm/msm_checks.hpp"
#include "ionmsm/parallel.hpp"

namespace ionmsm {

using namespace detail;

namespace {

#ifdef IONMSM_HAVE_SPECTRA

// y = B^T (B x) for the 2-norm by Lanczos.
class AtaOp {
 public:
  using Scalar = double;
  explicit AtaOp(const Eigen::MatrixXd& b) : b_(b), tmp_(b.rows()) {}
  Index rows() const { return b_.cols(); }
  Index cols() const { return b_.cols(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, b_.cols());
    Eigen::Map<Eigen::VectorXd> y(y_out, b_.cols());
    tmp_.noalias() = b_ * x;
    y.noalias() = b_.transpose() * tmp_;
  }

 private:
  const Eigen::MatrixXd& b_;
  mutable Eigen::VectorXd tmp_;
};

#endif  // IONMSM_HAVE_SPECTRA

}  // namespace

double matrix_two_norm(const Eigen::MatrixXd& a, std::size_t dense_svd_max) {
  if (a.size() == 0) return 0.0;
  if (!a.allFinite()) fail("matrix_two_norm", "the matrix has a non-finite entry");
  const double f = a.norm();
  if (f == 0.0) return 0.0;
  const Index small = std::min(a.rows(), a.cols());
#ifdef IONMSM_HAVE_SPECTRA
  if (static_cast<std::size_t>(small) > dense_svd_max && a.cols() >= 3) {
    const Eigen::MatrixXd b = a / f;  // ||b||_2 in [1/sqrt(rank), 1]: no tiny eigenvalues
    AtaOp op(b);
    Spectra::SymEigsSolver<AtaOp> eigs(op, 1, static_cast<Index>(std::min<Index>(a.cols(), 20)));
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestAlge, 1000, 1e-13, Spectra::SortRule::LargestAlge);
    if (eigs.info() == Spectra::CompInfo::Successful)
      return f * std::sqrt(std::max(0.0, eigs.eigenvalues()(0)));
  }
#else
  (void)dense_svd_max;
  (void)small;
#endif
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a);
  return svd.singularValues()(0);
}

LagTransitionMatrix lag_transition_matrix(const MarkovModel& model) {
  LagTransitionMatrix t;
  t.lag_steps = model.lag_steps;
  t.sites = model.connectivity.kept;
  t.transition_matrix = Eigen::MatrixXd(model.transition_matrix);
  return t;
}

namespace {

struct CkModel {
  std::int64_t lag = 0;
  std::vector<std::size_t> sites;
  SpMat m;  // column-stochastic, compressed
};

#ifdef IONMSM_HAVE_SPECTRA

// y = A^T (A x) with A = s * (S - M^n) (n >= 1) or A = s * S (n == 0), all sparse, matrix-free.
class CkAtaOp {
 public:
  using Scalar = double;
  CkAtaOp(const SpMat& sampled, const SpMat* base, int n, double scale)
      : s_(sampled), m_(base), n_(n), scale2_(scale * scale), t1_(sampled.rows()),
        t2_(sampled.rows()) {}
  Index rows() const { return s_.cols(); }
  Index cols() const { return s_.cols(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, s_.cols());
    Eigen::Map<Eigen::VectorXd> y(y_out, s_.cols());
    // a = A x
    a_.noalias() = s_ * x;
    if (n_ > 0) {
      t1_ = x;
      for (int k = 0; k < n_; ++k) {
        t2_.noalias() = (*m_) * t1_;
        t1_.swap(t2_);
      }
      a_ -= t1_;
    }
    // y = A^T a
    y.noalias() = s_.transpose() * a_;
    if (n_ > 0) {
      t1_ = a_;
      for (int k = 0; k < n_; ++k) {
        t2_.noalias() = m_->transpose() * t1_;
        t1_.swap(t2_);
      }
      y -= t1_;
    }
    y *= scale2_;
  }

 private:
  const SpMat& s_;
  const SpMat* m_;
  int n_;
  double scale2_;
  mutable Eigen::VectorXd a_, t1_, t2_;
};

// Largest singular value of A (see CkAtaOp) by Lanczos on A^T A; false if not converged.
bool ck_two_norm_matrix_free(const SpMat& sampled, const SpMat* base, int n, double scale,
                             double tol, double& out) {
  const Index k = sampled.cols();
  for (int attempt = 0; attempt < 2; ++attempt) {
    CkAtaOp op(sampled, base, n, scale);
    const Index ncv = std::min<Index>(k, attempt == 0 ? 20 : 60);
    Spectra::SymEigsSolver<CkAtaOp> eigs(op, 1, ncv);
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestAlge, attempt == 0 ? 1000 : 10000, tol,
                 Spectra::SortRule::LargestAlge);
    if (eigs.info() == Spectra::CompInfo::Successful) {
      out = std::sqrt(std::max(0.0, eigs.eigenvalues()(0))) / scale;
      return true;
    }
  }
  return false;
}

#endif  // IONMSM_HAVE_SPECTRA

// ------------------------------------------------------------------ one (tau, n tau) pair
// On the sites C kept at both lags, with both models restricted to C and renormalised
// (columns without weight inside C dropped, until stable):
//     err = ||M(n tau) - M(tau)^n||_2 / ||M(n tau)||_2.

/// The sites kept at both lags and their positions in each model.
struct CommonSites {
  std::vector<std::size_t> sites, ia, ib;
};

CommonSites common_sites(const CkModel& a, const CkModel& b) {
  CommonSites c;
  std::size_t x = 0, y = 0;
  while (x < a.sites.size() && y < b.sites.size()) {
    if (a.sites[x] < b.sites[y]) {
      ++x;
    } else if (b.sites[y] < a.sites[x]) {
      ++y;
    } else {
      c.sites.push_back(a.sites[x]);
      c.ia.push_back(x++);
      c.ib.push_back(y++);
    }
  }
  return c;
}

/// Both models restricted to the common sites: ma, mb column-stochastic on the sites left in c
/// after dropping, until stable, every column with no weight inside the set in either model.
void restrict_to_common(const CkModel& a, const CkModel& b, CommonSites& c, SpMat& ma,
                        SpMat& mb) {
  for (;;) {
    const Index k = static_cast<Index>(c.sites.size());
    ma = restrict_to_sites(a.m, c.ia);
    mb = restrict_to_sites(b.m, c.ib);
    const Eigen::VectorXd sa = column_sums(ma), sb = column_sums(mb);
    std::vector<std::size_t> keep;
    for (Index j = 0; j < k; ++j)
      if (sa(j) > 0.0 && sb(j) > 0.0) keep.push_back(static_cast<std::size_t>(j));
    if (static_cast<Index>(keep.size()) == k) {
      for (Index j = 0; j < k; ++j) {
        for (SpMat::InnerIterator it(ma, j); it; ++it) it.valueRef() = it.value() / sa(j);
        for (SpMat::InnerIterator it(mb, j); it; ++it) it.valueRef() = it.value() / sb(j);
      }
      return;
    }
    CommonSites kept;
    for (std::size_t j : keep) {
      kept.sites.push_back(c.sites[j]);
      kept.ia.push_back(c.ia[j]);
      kept.ib.push_back(c.ib[j]);
    }
    c = std::move(kept);
  }
}

#ifdef IONMSM_HAVE_SPECTRA
/// Matrix-free: ||S||_2 and ||S - M^n||_2 / ||S||_2 by Lanczos (S = mb, M = ma); ||S||_2 >= 1
/// for a column-stochastic S (1^T S = 1^T), so S needs no rescaling.
void ck_error_matrix_free(const SpMat& ma, const SpMat& mb, int n, const CkOptions& options,
                          CkRecord& rec) {
  rec.matrix_free = true;
  double s_norm = 0.0, a_norm = 0.0;
  rec.converged =
      ck_two_norm_matrix_free(mb, nullptr, 0, 1.0, options.lanczos_tolerance, s_norm) &&
      s_norm > 0.0 &&
      ck_two_norm_matrix_free(mb, &ma, n, 1.0 / s_norm, options.lanczos_tolerance, a_norm);
  rec.err = rec.converged ? a_norm / s_norm : kNaN;
}
#endif

/// M(tau)^n of one base lag, kept while the common sites stay the same (the next n of the same
/// base then costs n - power_n products).
struct PowerCache {
  std::vector<std::size_t> sites;
  Eigen::MatrixXd base, power;
  int power_n = 0;
};

/// Dense: ||S - M^n||_2 / ||S||_2 (S = mb, M = ma).
double ck_error_dense(const SpMat& ma, const SpMat& mb, int n,
                      const std::vector<std::size_t>& sites, PowerCache& cache,
                      const CkOptions& options) {
  const Eigen::MatrixXd da(ma), db(mb);
  if (cache.power_n == 0 || sites != cache.sites) {
    cache.sites = sites;
    cache.base = da;
    cache.power = da;
    cache.power_n = 1;
  }
  Eigen::MatrixXd next;
  while (cache.power_n < n) {
    next.noalias() = cache.power * cache.base;
    cache.power.swap(next);
    ++cache.power_n;
  }
  return matrix_two_norm(db - cache.power, options.dense_svd_max) /
         matrix_two_norm(db, options.dense_svd_max);
}

/// The records of base lag ms[a]: every later lag n tau with 2 <= n (<= max_n if set).
std::vector<CkRecord> ck_base_lag(const std::vector<CkModel>& ms, std::size_t a,
                                  const CkOptions& options) {
  std::vector<CkRecord> out;
  const std::int64_t tau = ms[a].lag;
  PowerCache cache;
  for (std::size_t b = a + 1; b < ms.size(); ++b) {
    if (ms[b].lag % tau != 0) continue;
    const std::int64_t n64 = ms[b].lag / tau;
    if (n64 < 2 || (options.max_n > 0 && n64 > options.max_n)) continue;
    const int n = static_cast<int>(n64);
    CommonSites common = common_sites(ms[a], ms[b]);
    SpMat ma, mb;
    restrict_to_common(ms[a], ms[b], common, ma, mb);
    CkRecord rec;
    rec.lag_steps = tau;
    rec.n = n;
    rec.n_sites = common.sites.size();
    if (common.sites.empty()) {
      rec.err = kNaN;
#ifdef IONMSM_HAVE_SPECTRA
    } else if (common.sites.size() > options.dense_max_sites && common.sites.size() >= 3) {
      ck_error_matrix_free(ma, mb, n, options, rec);
#endif
    } else {
      rec.err = ck_error_dense(ma, mb, n, common.sites, cache, options);
    }
    out.push_back(rec);
  }
  return out;
}

std::vector<CkRecord> ck_run(std::vector<CkModel>& ms, const CkOptions& options) {
  const char* fn = "chapman_kolmogorov_test";
  std::sort(ms.begin(), ms.end(), [](const CkModel& a, const CkModel& b) { return a.lag < b.lag; });
  for (std::size_t k = 1; k < ms.size(); ++k)
    if (ms[k].lag == ms[k - 1].lag) fail(fn, "lag " + std::to_string(ms[k].lag) + " given twice");
  // The base lags are independent: up to two threads, each base lag's records kept apart and
  // concatenated in lag order (the result does not depend on the scheduling; the first error in
  // base-lag order is rethrown).
  std::vector<std::vector<CkRecord>> per_base(ms.size());
  parallel_for(ms.size(), [&](std::size_t a, int) { per_base[a] = ck_base_lag(ms, a, options); });
  std::vector<CkRecord> out;
  for (auto& v : per_base) out.insert(out.end(), v.begin(), v.end());
  return out;
}

void ck_check_sites(CkModel& c, Index rows, const std::string& which, const char* fn) {
  if (c.sites.empty()) {
    c.sites.resize(static_cast<std::size_t>(rows));
    std::iota(c.sites.begin(), c.sites.end(), std::size_t(0));
  }
  if (static_cast<Index>(c.sites.size()) != rows)
    fail(fn, which + ": " + std::to_string(c.sites.size()) + " sites for a " +
                 std::to_string(rows) + " x " + std::to_string(rows) + " matrix");
  for (std::size_t k = 1; k < c.sites.size(); ++k)
    if (c.sites[k] <= c.sites[k - 1]) fail(fn, which + ": sites must be strictly increasing");
}

// One validated CK model from a lag's transition matrix (dense or sparse) and its site list.
template <class Matrix>
CkModel make_ck_model(std::int64_t lag_steps, const Matrix& m, const std::vector<std::size_t>& sites,
                      const char* fn) {
  const std::string which = "lag " + std::to_string(lag_steps);
  if (lag_steps <= 0) fail(fn, which + ": lag_steps must be > 0");
  check_square(m.rows(), m.cols(), fn, "each transition matrix");
  if (m.rows() == 0) fail(fn, which + ": empty transition matrix");
  check_finite(m, fn, "a transition matrix");
  check_column_stochastic(column_sums(m), fn);
  CkModel c;
  c.lag = lag_steps;
  c.sites = sites;
  ck_check_sites(c, m.rows(), which, fn);
  if constexpr (std::is_same_v<Matrix, SpMat>)
    c.m = m;
  else
    c.m = m.sparseView(0.0, 0.0);  // drops exact zeros only: the same numbers
  c.m.makeCompressed();
  return c;
}

const std::vector<std::size_t>& ck_sites(const LagTransitionMatrix& t) { return t.sites; }
const std::vector<std::size_t>& ck_sites(const MarkovModel& t) { return t.connectivity.kept; }

/// Both overloads of chapman_kolmogorov_test: every model validated, then ck_run.
template <class Model>
std::vector<CkRecord> ck_models(const std::vector<Model>& models, const CkOptions& options) {
  const char* fn = "chapman_kolmogorov_test";
  if (options.max_n < 0) fail(fn, "max_n must be >= 0");
  std::vector<CkModel> ms;
  ms.reserve(models.size());
  for (const Model& t : models)
    ms.push_back(make_ck_model(t.lag_steps, t.transition_matrix, ck_sites(t), fn));
  return ck_run(ms, options);
}

}  // namespace

std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<LagTransitionMatrix>& models,
                                              const CkOptions& options) {
  return ck_models(models, options);
}

std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<MarkovModel>& models,
                                              const CkOptions& options) {
  return ck_models(models, options);
}

}  // namespace ionmsm
