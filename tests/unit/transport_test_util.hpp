#pragma once
// Helpers shared by the transport unit tests (test_transport_statistics, test_propagation,
// test_diffusion): hand-built CountsData of lattices, chains and random chains.
#include <Eigen/Dense>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "ionmsm/transport.hpp"

namespace transport_test {

using ionmsm::CountsData;
using ionmsm::Image;
using ionmsm::LagCounts;
using ionmsm::TransitionCount;

inline std::string invalid_argument_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "<no exception>";
}

// Adds count to (from, to, shift) of a lag (merging duplicates).
struct RowMap {
  std::map<std::tuple<int, int, int, int, int>, std::uint64_t> m;
  void add(int from, int to, const Image& s, std::uint64_t c) {
    m[std::make_tuple(from, to, s[0], s[1], s[2])] += c;
  }
  LagCounts lag(std::int64_t lag_steps) const {
    LagCounts l;
    l.lag_steps = lag_steps;
    for (const auto& kv : m) {
      TransitionCount t;
      t.from = std::get<0>(kv.first);
      t.to = std::get<1>(kv.first);
      t.shift = {std::get<2>(kv.first), std::get<3>(kv.first), std::get<4>(kv.first)};
      t.count = kv.second;
      l.rows.push_back(t);
    }
    return l;
  }
};

// ---------------------------------------------------------------- anisotropic lattice walk
struct Lattice {
  int n[3] = {4, 3, 5};
  double a[3] = {2.0, 1.5, 3.0};
  double p[3] = {0.1, 0.05, 0.02};  // per direction (+ and - each)
  std::uint64_t origins = 1000000;  // per site
  int site(int ix, int iy, int iz) const { return (ix * n[1] + iy) * n[2] + iz; }
  int nsites() const { return n[0] * n[1] * n[2]; }
};

inline CountsData make_lattice(const Lattice& L, const double* p = nullptr) {
  const double* prob = p ? p : L.p;
  CountsData d;
  d.units = "metal";
  d.timestep_ps = 0.001;
  d.box_h = Eigen::Vector3d(L.n[0] * L.a[0], L.n[1] * L.a[1], L.n[2] * L.a[2]).asDiagonal();
  RowMap rows;
  for (int ix = 0; ix < L.n[0]; ++ix)
    for (int iy = 0; iy < L.n[1]; ++iy)
      for (int iz = 0; iz < L.n[2]; ++iz) {
        d.site_fractional.emplace_back(double(ix) / L.n[0], double(iy) / L.n[1],
                                       double(iz) / L.n[2]);
        d.occupancy.push_back(L.origins);
        const int idx[3] = {ix, iy, iz};
        const int from = L.site(ix, iy, iz);
        std::uint64_t moved = 0;
        for (int ax = 0; ax < 3; ++ax)
          for (int sign : {-1, 1}) {
            int j[3] = {idx[0], idx[1], idx[2]};
            Image shift{0, 0, 0};
            j[ax] += sign;
            if (j[ax] < 0) {
              j[ax] += L.n[ax];
              shift[ax] = -1;
            } else if (j[ax] >= L.n[ax]) {
              j[ax] -= L.n[ax];
              shift[ax] = 1;
            }
            const auto c = static_cast<std::uint64_t>(std::llround(prob[ax] * L.origins));
            rows.add(from, L.site(j[0], j[1], j[2]), shift, c);
            moved += c;
          }
        rows.add(from, from, {0, 0, 0}, L.origins - moved);
      }
  d.lags.push_back(rows.lag(10));
  return d;
}

// ---------------------------------------------------------------- correlated two-sublattice chain
// Sites A at x = 0 and B at x = s in a cell of length Lc along x (no hops along y, z). From A a
// hop to either neighbouring B (distance s or Lc - s) with probability pA each, from B to either
// neighbouring A with pB each. In chain-index space this is a symmetric nearest-neighbour walk
// and x = index * Lc / 2 + bounded, so D = nu (Lc/2)^2 / (2 tau) with the jump frequency
// nu = 2 (piA pA + piB pB) = 4 pA pB / (pA + pB): D = pA pB Lc^2 / (2 (pA + pB) tau), while
// D0 = pA pB (s^2 + (Lc - s)^2) / ((pA + pB) tau): f = Lc^2 / (2 (s^2 + (Lc - s)^2)) < 1.
struct Chain {
  double Lc = 3.0, s = 0.9;
  double pA = 0.3, pB = 0.1;
  std::uint64_t KA = 1000000, KB = 3000000;  // origins (piA = 0.25, piB = 0.75)
};

inline CountsData make_chain(const Chain& c, bool with_occupancy = true) {
  CountsData d;
  d.box_h = Eigen::Vector3d(c.Lc, 5.0, 5.0).asDiagonal();
  d.site_fractional = {Eigen::Vector3d(0, 0, 0), Eigen::Vector3d(c.s / c.Lc, 0, 0)};
  if (with_occupancy) d.occupancy = {c.KA, c.KB};
  RowMap r;
  const auto hA = static_cast<std::uint64_t>(std::llround(c.pA * c.KA));
  const auto hB = static_cast<std::uint64_t>(std::llround(c.pB * c.KB));
  r.add(0, 1, {0, 0, 0}, hA);   // right, distance s
  r.add(0, 1, {-1, 0, 0}, hA);  // left, distance Lc - s
  r.add(0, 0, {0, 0, 0}, c.KA - 2 * hA);
  r.add(1, 0, {1, 0, 0}, hB);   // right, distance Lc - s
  r.add(1, 0, {0, 0, 0}, hB);   // left, distance s
  r.add(1, 1, {0, 0, 0}, c.KB - 2 * hB);
  d.lags.push_back(r.lag(5));
  return d;
}

// ---------------------------------------------------------------- random triclinic model
inline Eigen::Matrix3d triclinic_h() {
  Eigen::Matrix3d h;
  h << 5.0, 1.2, -0.8,  //
      0.0, 4.5, 0.9,    //
      0.0, 0.0, 6.0;
  return h;
}

// Random sparse counts: every site gets a stay and a few random (to, shift) rows.
inline CountsData make_random(int nsites, unsigned seed, bool reversible) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uf(0.0, 1.0);
  std::uniform_int_distribution<int> usite(0, nsites - 1), ushift(-1, 1), ucount(1, 1000),
      nrows(2, 4);
  CountsData d;
  d.box_h = triclinic_h();
  d.box_origin = Eigen::Vector3d(0.3, -0.2, 0.1);
  for (int i = 0; i < nsites; ++i) {
    d.site_fractional.emplace_back(uf(rng), uf(rng), uf(rng));
    d.occupancy.push_back(static_cast<std::uint64_t>(ucount(rng)));
  }
  RowMap r;
  for (int j = 0; j < nsites; ++j) {
    r.add(j, j, {0, 0, 0}, static_cast<std::uint64_t>(ucount(rng)));
    const int k = nrows(rng);
    for (int q = 0; q < k; ++q) {
      const int to = usite(rng);
      const Image s{ushift(rng), ushift(rng), ushift(rng)};
      const auto c = static_cast<std::uint64_t>(ucount(rng));
      r.add(j, to, s, c);
      if (reversible) r.add(to, j, {-s[0], -s[1], -s[2]}, c);
    }
  }
  d.lags.push_back(r.lag(1));
  return d;
}

inline Eigen::Vector3d brute_minimum_image(const Eigen::Matrix3d& h, const Eigen::Vector3d& df) {
  Eigen::Vector3d best = h * df;
  for (int a = -4; a <= 4; ++a)
    for (int b = -4; b <= 4; ++b)
      for (int c = -4; c <= 4; ++c) {
        const Eigen::Vector3d x = h * (df + Eigen::Vector3d(a, b, c));
        if (x.squaredNorm() < best.squaredNorm()) best = x;
      }
  return best;
}

}  // namespace transport_test
