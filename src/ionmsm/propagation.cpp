// MSD propagation and Einstein fits: see propagation.hpp.
#include "ionmsm/propagation.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/diffusion.hpp"
#include "ionmsm/parallel.hpp"
#include "ionmsm/transport_checks.hpp"

namespace ionmsm {

using namespace detail;

namespace {

// Shortest vector H (frac + k) over integer k. Exact for any cell: starting from the rounded
// fractional difference w with length r, only k with |w_a + k_a| <= r |row a of H^-1| (the
// fractional extent of a ball of radius r) can be shorter, and all of them are searched.
// Ties keep the first candidate found (k = 0 first).
class MinimumImage {
 public:
  explicit MinimumImage(const Eigen::Matrix3d& h) : h_(h) {
    const Eigen::Matrix3d hinv = h.inverse();
    for (int a = 0; a < 3; ++a) inv_face_[a] = hinv.row(a).norm();
  }
  Eigen::Vector3d operator()(const Eigen::Vector3d& frac) const {
    const Eigen::Vector3d w(frac[0] - std::round(frac[0]), frac[1] - std::round(frac[1]),
                            frac[2] - std::round(frac[2]));
    const Eigen::Vector3d x0 = h_ * w;
    Eigen::Vector3d best = x0;
    double best2 = x0.squaredNorm();
    const double r = std::sqrt(best2) * (1.0 + 1e-12);
    int lo[3], hi[3];
    bool only_zero = true;
    for (int a = 0; a < 3; ++a) {
      lo[a] = static_cast<int>(std::ceil(-r * inv_face_[a] - w[a]));
      hi[a] = static_cast<int>(std::floor(r * inv_face_[a] - w[a]));
      if (lo[a] != 0 || hi[a] != 0) only_zero = false;
    }
    if (only_zero) return best;
    for (int k0 = lo[0]; k0 <= hi[0]; ++k0)
      for (int k1 = lo[1]; k1 <= hi[1]; ++k1)
        for (int k2 = lo[2]; k2 <= hi[2]; ++k2) {
          if (k0 == 0 && k1 == 0 && k2 == 0) continue;
          const Eigen::Vector3d x =
              x0 + h_ * Eigen::Vector3d(static_cast<double>(k0), static_cast<double>(k1),
                                        static_cast<double>(k2));
          const double d2 = x.squaredNorm();
          if (d2 < best2) {
            best2 = d2;
            best = x;
          }
        }
    return best;
  }

 private:
  Eigen::Matrix3d h_;
  double inv_face_[3] = {0.0, 0.0, 0.0};
};

struct MsdAccumulator {
  std::vector<Eigen::Matrix3d> tensor;
  std::vector<Eigen::Vector3d> mean;
  explicit MsdAccumulator(std::size_t n)
      : tensor(n, Eigen::Matrix3d::Zero()), mean(n, Eigen::Vector3d::Zero()) {}
};

MsdAccumulator propagate_moments(const TransportStatistics& s, const std::vector<double>& p0,
                                 std::int64_t n_max) {
  const std::size_t n = s.nstates();
  const std::vector<StatePair> pairs = state_pairs(s);
  std::vector<double> p(p0), np(n);
  std::vector<Eigen::Vector3d> m1(n, Eigen::Vector3d::Zero()), nm1(n);
  std::vector<Eigen::Matrix3d> m2(n, Eigen::Matrix3d::Zero()), nm2(n);
  MsdAccumulator acc(static_cast<std::size_t>(n_max));
  for (std::int64_t step = 0; step < n_max; ++step) {
    std::fill(np.begin(), np.end(), 0.0);
    std::fill(nm1.begin(), nm1.end(), Eigen::Vector3d::Zero());
    std::fill(nm2.begin(), nm2.end(), Eigen::Matrix3d::Zero());
    for (const auto& q : pairs) {
      const auto j = static_cast<std::size_t>(q.from), i = static_cast<std::size_t>(q.to);
      const double pj = p[j];
      np[i] += q.p * pj;
      nm1[i] += q.p * (m1[j] + pj * q.mean);
      const Eigen::Matrix3d c = m1[j] * q.mean.transpose();
      nm2[i] += q.p * (m2[j] + c + c.transpose() + pj * q.second);
    }
    p.swap(np);
    m1.swap(nm1);
    m2.swap(nm2);
    Eigen::Matrix3d t = Eigen::Matrix3d::Zero();
    Eigen::Vector3d m = Eigen::Vector3d::Zero();
    for (std::size_t i = 0; i < n; ++i) {
      t += m2[i];
      m += m1[i];
    }
    acc.tensor[static_cast<std::size_t>(step)] = sym_clean(t);
    acc.mean[static_cast<std::size_t>(step)] = m;
  }
  return acc;
}

// Minimum-image (R = 1) and replicated propagation: start columns are propagated in blocks.
std::size_t cell_index(const std::array<int, 3>& rep, int c0, int c1, int c2) {
  return (static_cast<std::size_t>(c0) * static_cast<std::size_t>(rep[1]) +
          static_cast<std::size_t>(c1)) * static_cast<std::size_t>(rep[2]) +
         static_cast<std::size_t>(c2);
}

/// Transitions of the (state, cell) chain of the replicated cell, grouped by destination (CSR:
/// the sources of destination i are src/p[dst_start[i] .. dst_start[i + 1])), so that the new
/// probability of a destination row is summed from its sources while it stays in cache.
struct FoldedMoves {
  std::vector<std::size_t> dst_start, src;
  std::vector<double> p;
};

FoldedMoves folded_moves(const TransportStatistics& s, const std::array<int, 3>& rep,
                         std::size_t rc, std::size_t ns) {
  struct Move {
    std::size_t src, dst;
    double p;
  };
  std::vector<Move> moves;
  moves.reserve(s.rows.size() * rc);
  for (const auto& r : s.rows) {
    const auto from = static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(r.from)]);
    const auto to = static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(r.to)]);
    std::array<int, 3> sh{};
    for (std::size_t a = 0; a < 3; ++a) {
      int v = r.shift[a] % rep[a];
      if (v < 0) v += rep[a];
      sh[a] = v;
    }
    for (int c0 = 0; c0 < rep[0]; ++c0)
      for (int c1 = 0; c1 < rep[1]; ++c1)
        for (int c2 = 0; c2 < rep[2]; ++c2)
          moves.push_back({from * rc + cell_index(rep, c0, c1, c2),
                           to * rc + cell_index(rep, (c0 + sh[0]) % rep[0],
                                                (c1 + sh[1]) % rep[1], (c2 + sh[2]) % rep[2]),
                           r.probability});
  }
  std::stable_sort(moves.begin(), moves.end(),
                   [](const Move& a, const Move& b) { return a.dst < b.dst; });
  FoldedMoves m;
  m.dst_start.assign(ns + 1, 0);
  m.src.resize(moves.size());
  m.p.resize(moves.size());
  for (std::size_t k = 0; k < moves.size(); ++k) {
    ++m.dst_start[moves[k].dst + 1];
    m.src[k] = moves[k].src;
    m.p[k] = moves[k].p;
  }
  for (std::size_t i = 0; i < ns; ++i) m.dst_start[i + 1] += m.dst_start[i];
  return m;
}

/// One step of the folded chain for nb columns side by side: vout = P vin.
void folded_step(const FoldedMoves& m, std::size_t ns, std::size_t nb, const double* vin,
                 double* vout) {
  for (std::size_t dst = 0; dst < ns; ++dst) {
    double* out = vout + dst * nb;
    std::fill(out, out + nb, 0.0);
    for (std::size_t k = m.dst_start[dst]; k < m.dst_start[dst + 1]; ++k) {
      const double* in = vin + m.src[k] * nb;
      const double p = m.p[k];
      for (std::size_t b = 0; b < nb; ++b) out[b] += p * in[b];
    }
  }
}

/// The folded problem shared by the blocks of propagate_folded.
struct FoldedProblem {
  const TransportStatistics& s;
  const std::vector<double>& p0;
  std::array<int, 3> rep;
  std::size_t na, rc, ns;
  Eigen::Vector3d rv;               // replicas as a vector
  MinimumImage mi;                  // in the replicated cell
  std::vector<Eigen::Vector3d> f;   // fractional coordinates of the states
  std::vector<std::size_t> starts;  // start states (p0 > 0)
  FoldedMoves moves;
};

/// W (ns*nb x 9) of one block: weight_b * (d_x^2, d_y^2, d_z^2, d_x d_y, d_x d_z, d_y d_z, d_x,
/// d_y, d_z) of every (state, column) entry, d the minimum-image displacement from the start.
void folded_weights(const FoldedProblem& q, std::size_t b0, std::size_t nb, Eigen::MatrixXd& w) {
  for (std::size_t i = 0; i < q.na; ++i)
    for (int c0 = 0; c0 < q.rep[0]; ++c0)
      for (int c1 = 0; c1 < q.rep[1]; ++c1)
        for (int c2 = 0; c2 < q.rep[2]; ++c2) {
          const std::size_t cell = cell_index(q.rep, c0, c1, c2);
          const Eigen::Vector3d fi = q.f[i] + Eigen::Vector3d(c0, c1, c2);
          for (std::size_t b = 0; b < nb; ++b) {
            const Eigen::Vector3d frac = (fi - q.f[q.starts[b0 + b]]).cwiseQuotient(q.rv);
            const Eigen::Vector3d d = q.mi(frac);
            const double pw = q.p0[q.starts[b0 + b]];
            const auto e = static_cast<Eigen::Index>((i * q.rc + cell) * nb + b);
            w(e, 0) = pw * d[0] * d[0];
            w(e, 1) = pw * d[1] * d[1];
            w(e, 2) = pw * d[2] * d[2];
            w(e, 3) = pw * d[0] * d[1];
            w(e, 4) = pw * d[0] * d[2];
            w(e, 5) = pw * d[1] * d[2];
            w(e, 6) = pw * d[0];
            w(e, 7) = pw * d[1];
            w(e, 8) = pw * d[2];
          }
        }
}

/// The moments (9 x n_max) of the block of start columns [b0, b0 + nb): the probabilities after
/// `chunk` consecutive steps are the columns of V (ns*nb x chunk), and their moments W^T V come
/// out of one dense matrix product (vectorised, W read once per chunk instead of once per
/// step). Column 0 of vs holds the state before the chunk.
Eigen::MatrixXd folded_block_moments(const FoldedProblem& q, std::size_t b0, std::size_t nb,
                                     std::int64_t n_max, std::size_t chunk, Eigen::MatrixXd& w,
                                     Eigen::MatrixXd& vs) {
  folded_weights(q, b0, nb, w);
  Eigen::MatrixXd mom(9, n_max);
  const auto l = static_cast<Eigen::Index>(q.ns * nb);
  vs.col(0).head(l).setZero();
  for (std::size_t b = 0; b < nb; ++b)
    vs(static_cast<Eigen::Index>((q.starts[b0 + b] * q.rc) * nb + b), 0) = 1.0;
  for (std::int64_t step0 = 0; step0 < n_max; step0 += static_cast<std::int64_t>(chunk)) {
    const auto nc = static_cast<Eigen::Index>(
        std::min<std::int64_t>(static_cast<std::int64_t>(chunk), n_max - step0));
    for (Eigen::Index c = 1; c <= nc; ++c)
      folded_step(q.moves, q.ns, nb, vs.col(c - 1).data(), vs.col(c).data());
    mom.middleCols(step0, nc).noalias() = w.topRows(l).transpose() * vs.block(0, 1, l, nc);
    vs.col(0).head(l) = vs.col(nc).head(l);
  }
  return mom;
}

MsdAccumulator propagate_folded(const TransportStatistics& s, const std::vector<double>& p0,
                                const std::array<int, 3>& rep, std::int64_t n_max) {
  const std::size_t na = s.nstates();
  const std::size_t rc = static_cast<std::size_t>(rep[0]) * static_cast<std::size_t>(rep[1]) *
                         static_cast<std::size_t>(rep[2]);
  const Eigen::Vector3d rv(rep[0], rep[1], rep[2]);
  FoldedProblem q{s, p0, rep, na, rc, na * rc, rv, MinimumImage(s.box_h * rv.asDiagonal()),
                  {}, {}, folded_moves(s, rep, rc, na * rc)};
  for (std::size_t j = 0; j < na; ++j)
    if (p0[j] > 0.0) q.starts.push_back(j);
  q.f.resize(na);
  for (std::size_t i = 0; i < na; ++i)
    q.f[i] = s.site_fractional[static_cast<std::size_t>(s.active_sites[i])];

  const std::size_t budget = std::size_t(1) << 20;  // state x column entries per block
  const std::size_t block = std::max<std::size_t>(
      1, std::min<std::size_t>({64, budget / std::max<std::size_t>(q.ns, 1), q.starts.size()}));
  const std::size_t n_blocks = (q.starts.size() + block - 1) / block;
  const std::size_t len_max = q.ns * block;
  const std::size_t chunk = static_cast<std::size_t>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(
             {16, n_max,
              static_cast<std::int64_t>((std::size_t(1) << 21) /
                                        std::max<std::size_t>(len_max, 1))})));
  // Blocks are independent: up to two threads, each block's moments kept separately and
  // summed in block order, so the result does not depend on the scheduling.
  std::vector<Eigen::MatrixXd> block_moments(n_blocks);
  {
    // scratch per worker (parallel_for runs at most two)
    Eigen::MatrixXd w[2], vs[2];
    for (int id = 0; id < 2; ++id) {
      w[id].resize(len_max, 9);
      vs[id].resize(len_max, static_cast<Eigen::Index>(chunk) + 1);
    }
    parallel_for(n_blocks, [&](std::size_t bi, int id) {
      const std::size_t b0 = bi * block;
      const std::size_t nb = std::min(block, q.starts.size() - b0);
      block_moments[bi] = folded_block_moments(q, b0, nb, n_max, chunk, w[id], vs[id]);
    });
  }
  MsdAccumulator acc(static_cast<std::size_t>(n_max));
  for (const Eigen::MatrixXd& mom : block_moments)
    for (std::int64_t c = 0; c < n_max; ++c) {
      Eigen::Matrix3d t;
      t << mom(0, c), mom(3, c), mom(4, c), mom(3, c), mom(1, c), mom(5, c), mom(4, c),
          mom(5, c), mom(2, c);
      const auto st = static_cast<std::size_t>(c);
      acc.tensor[st] += t;
      acc.mean[st] += Eigen::Vector3d(mom(6, c), mom(7, c), mom(8, c));
    }
  return acc;
}

}  // namespace

const char* msd_method_name(MsdMethod method) {
  switch (method) {
    case MsdMethod::minimum_image: return "minimum_image";
    case MsdMethod::replicated: return "replicated";
    case MsdMethod::moments: return "moments";
  }
  return "unknown";
}

MsdMethod parse_msd_method(const std::string& name) {
  if (name == "minimum_image") return MsdMethod::minimum_image;
  if (name == "replicated") return MsdMethod::replicated;
  if (name == "moments") return MsdMethod::moments;
  fail(cat("unknown MSD method '", name, "' (expected minimum_image, replicated or moments)"));
}

MsdCurve propagate_msd(const TransportStatistics& stats, double lag_time, const MsdOptions& options) {
  const char* who = "propagate_msd";
  check_stats(stats, who);
  check_tau(lag_time, who);
  if (options.n_max < 1) fail(cat(who, ": n_max must be >= 1 (got ", options.n_max, ")"));
  std::array<int, 3> rep{1, 1, 1};
  if (options.method == MsdMethod::replicated) {
    for (int a = 0; a < 3; ++a)
      if (options.replicas[static_cast<std::size_t>(a)] < 1)
        fail(cat(who, ": replica counts must be >= 1 (got ", options.replicas[0], " ",
                 options.replicas[1], " ", options.replicas[2], ")"));
    rep = options.replicas;
  }
  const std::size_t na = stats.nstates();
  std::vector<double> p0;
  switch (options.start) {
    case MsdStart::occupancy: p0 = occupancy_start(stats); break;
    case MsdStart::uniform: p0.assign(na, 1.0 / static_cast<double>(na)); break;
    case MsdStart::stationary: {
      const DiffusionTensorResult d = exact_diffusion_tensor(stats, lag_time);
      p0.resize(na);
      for (std::size_t k = 0; k < na; ++k)
        p0[k] = d.limiting_distribution[static_cast<std::size_t>(stats.active_sites[k])];
      break;
    }
  }
  MsdCurve c;
  c.method = options.method;
  c.replicas = rep;
  c.lag_steps = stats.lag_steps;
  c.lag_time = lag_time;
  c.start_probability.assign(stats.nsites(), 0.0);
  for (std::size_t k = 0; k < na; ++k)
    c.start_probability[static_cast<std::size_t>(stats.active_sites[k])] = p0[k];

  const MsdAccumulator acc = options.method == MsdMethod::moments
                                 ? propagate_moments(stats, p0, options.n_max)
                                 : propagate_folded(stats, p0, rep, options.n_max);
  const auto nn = static_cast<std::size_t>(options.n_max);
  c.n_lags.resize(nn);
  c.time.resize(nn);
  c.msd_tensor = acc.tensor;
  c.mean_displacement = acc.mean;
  c.msd_xx.resize(nn);
  c.msd_yy.resize(nn);
  c.msd_zz.resize(nn);
  c.msd_total.resize(nn);
  for (std::size_t k = 0; k < nn; ++k) {
    c.n_lags[k] = static_cast<std::int64_t>(k) + 1;
    c.time[k] = static_cast<double>(k + 1) * lag_time;
    c.msd_xx[k] = acc.tensor[k](0, 0);
    c.msd_yy[k] = acc.tensor[k](1, 1);
    c.msd_zz[k] = acc.tensor[k](2, 2);
    c.msd_total[k] = acc.tensor[k].trace();
  }
  return c;
}

EinsteinFit fit_einstein(const MsdCurve& curve, double first_fraction) {
  const char* who = "fit_einstein";
  const std::size_t n = curve.time.size();
  if (curve.msd_xx.size() != n || curve.msd_yy.size() != n ||
      curve.msd_zz.size() != n || curve.msd_total.size() != n)
    fail(cat(who, ": inconsistent MSD curve (", n, " times, ", curve.msd_xx.size(), "/",
             curve.msd_yy.size(), "/", curve.msd_zz.size(), "/", curve.msd_total.size(),
             " MSD values)"));
  if (n < 2) fail(cat(who, ": the MSD curve needs at least 2 points (has ", n, ")"));
  if (!(first_fraction >= 0.0 && first_fraction < 1.0))
    fail(cat(who, ": first_fraction must be in [0, 1) (got ", first_fraction, ")"));
  std::size_t first = static_cast<std::size_t>(std::floor(static_cast<double>(n) * first_fraction));
  first = std::min(first, n - 2);
  const std::size_t m = n - first;
  double tbar = 0.0;
  for (std::size_t k = first; k < n; ++k) tbar += curve.time[k];
  tbar /= static_cast<double>(m);
  double stt = 0.0;
  for (std::size_t k = first; k < n; ++k) stt += (curve.time[k] - tbar) * (curve.time[k] - tbar);
  if (!(stt > 0.0)) fail(cat(who, ": the fitted times are all equal"));
  auto line = [&](const std::vector<double>& y, double& slope, double& intercept) {
    double ybar = 0.0;
    for (std::size_t k = first; k < n; ++k) ybar += y[k];
    ybar /= static_cast<double>(m);
    double sty = 0.0;
    for (std::size_t k = first; k < n; ++k) sty += (curve.time[k] - tbar) * (y[k] - ybar);
    slope = sty / stt;
    intercept = ybar - slope * tbar;
  };
  EinsteinFit fit;
  fit.first_point = first;
  fit.n_points = m;
  const std::vector<double>* comp[3] = {&curve.msd_xx, &curve.msd_yy, &curve.msd_zz};
  for (int a = 0; a < 3; ++a) {
    double slope = 0.0, icpt = 0.0;
    line(*comp[a], slope, icpt);
    fit.D_axes[a] = slope / 2.0;
    fit.intercept[a] = icpt;
  }
  double slope = 0.0;
  line(curve.msd_total, slope, fit.intercept_total);
  fit.D_total = slope / 6.0;
  return fit;
}

MsdCurve drift_centred(const MsdCurve& curve) {
  const std::size_t n = curve.time.size();
  if (curve.msd_tensor.size() != n || curve.mean_displacement.size() != n)
    fail(cat("drift_centred: inconsistent MSD curve (", n, " times, ", curve.msd_tensor.size(),
             " tensors, ", curve.mean_displacement.size(), " mean displacements)"));
  MsdCurve c = curve;
  c.msd_xx.clear();
  c.msd_yy.clear();
  c.msd_zz.clear();
  c.msd_total.clear();
  for (std::size_t k = 0; k < n; ++k) {
    const Eigen::Vector3d& m = curve.mean_displacement[k];
    c.msd_tensor[k] = curve.msd_tensor[k] - m * m.transpose();
    c.mean_displacement[k].setZero();
    c.msd_xx.push_back(c.msd_tensor[k](0, 0));
    c.msd_yy.push_back(c.msd_tensor[k](1, 1));
    c.msd_zz.push_back(c.msd_tensor[k](2, 2));
    c.msd_total.push_back(c.msd_tensor[k].trace());
  }
  return c;
}

}  // namespace ionmsm
