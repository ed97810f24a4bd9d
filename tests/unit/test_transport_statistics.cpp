// Unit tests of src/ionmsm/transport_statistics.hpp: displacement statistics, the active set, the jump network and argument checks.
// CountsData is built by hand (no file I/O).
#include "ionmsm/transport_statistics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "transport_test_util.hpp"

using namespace transport_test;

TEST(TransportLattice, JumpNetworkRatesAndProjectionAxes) {
  const Lattice L;
  CountsData data = make_lattice(L);
  // a second, longer lag with other probabilities: the CountsData overload must use lag 0
  const double p2[3] = {0.2, 0.2, 0.2};
  data.lags.push_back(make_lattice(L, p2).lags[0]);
  data.lags[1].lag_steps = 20;
  const double tau = 0.05;
  const auto net = ionmsm::build_jump_network(data, tau);
  EXPECT_EQ(net.lag_steps, 10);
  EXPECT_EQ(net.edges.size(), 180u);  // 60 sites x 6 neighbours / 2
  ASSERT_EQ(net.site_cartesian.size(), 60u);
  EXPECT_NEAR((net.site_cartesian[L.site(1, 2, 3)] - Eigen::Vector3d(2.0, 3.0, 9.0)).norm(), 0,
              1e-12);
  for (double o : net.occupancy_fraction) EXPECT_NEAR(o, 1.0 / 60.0, 1e-15);
  for (const auto& e : net.edges) {
    ASSERT_LT(e.site_a, e.site_b);
    const Eigen::Vector3d v = e.mean_jump_ab.cwiseAbs();
    int axis = 0;
    v.maxCoeff(&axis);
    EXPECT_NEAR(v[axis], L.a[axis], 1e-12);
    EXPECT_NEAR(v.sum() - v[axis], 0.0, 1e-12);
    EXPECT_EQ(e.count_ab, std::uint64_t(L.p[axis] * L.origins + 0.5));
    EXPECT_EQ(e.count_ba, e.count_ab);
    EXPECT_NEAR(e.rate_ab, L.p[axis] / tau, 1e-12);
    EXPECT_NEAR(e.rate_ba, L.p[axis] / tau, 1e-12);
  }
  for (auto h : net.self_image_hop_count) EXPECT_EQ(h, 0u);

  const auto stats = ionmsm::build_transport_statistics(data, 0);
  const auto ax = ionmsm::most_informative_axes(stats);
  // var_a = p_a a_a^2 / (px + py + pz): 0.4, 0.1125, 0.18 over 0.17
  EXPECT_EQ(ax.axes[0], 0);
  EXPECT_EQ(ax.axes[1], 2);
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(ax.jump_variance[a], L.p[a] * L.a[a] * L.a[a] / 0.17, 1e-12);
  EXPECT_EQ(ax.n_jumps, 60u * 2u * 170000u);
}

// ---------------------------------------------------------------- state space and classes
TEST(TransportStates, SitesWithoutOutgoingCountsAreExcluded) {
  CountsData d;
  d.box_h = Eigen::Matrix3d::Identity() * 10.0;
  for (int i = 0; i < 4; ++i) d.site_fractional.emplace_back(0.1 * i, 0, 0);
  d.occupancy = {10, 10, 10, 10};
  RowMap r;
  r.add(0, 0, {0, 0, 0}, 50);
  r.add(0, 1, {0, 0, 0}, 50);
  r.add(1, 0, {0, 0, 0}, 30);
  r.add(1, 1, {0, 0, 0}, 60);
  r.add(1, 2, {0, 0, 0}, 10);  // 2 only leads to 3, and 3 has no outgoing counts
  r.add(2, 3, {0, 0, 0}, 7);
  d.lags.push_back(r.lag(1));
  const auto s = ionmsm::build_transport_statistics(d, 0);
  EXPECT_EQ(s.active_sites, (std::vector<ionmsm::SiteIndex>{0, 1}));
  EXPECT_EQ(s.excluded_sites, (std::vector<ionmsm::SiteIndex>{2, 3}));
  EXPECT_EQ(s.state_of_site, (std::vector<std::int32_t>{0, 1, -1, -1}));
  EXPECT_EQ(s.total_count, 207u);
  EXPECT_EQ(s.dropped_count, 17u);
  EXPECT_EQ(s.outgoing_count[1], 100u);
  const Eigen::MatrixXd M = Eigen::MatrixXd(ionmsm::transition_matrix(s));
  EXPECT_NEAR(M(0, 1), 30.0 / 90.0, 1e-15);
  EXPECT_NEAR(M(1, 1), 60.0 / 90.0, 1e-15);
  EXPECT_EQ(M.col(2).sum() + M.col(3).sum(), 0.0);
  ionmsm::MsdOptions opt;
  opt.n_max = 2;
  const auto c = ionmsm::propagate_msd(s, 1.0, opt);
  EXPECT_NEAR(c.start_probability[0], 0.5, 1e-15);
  EXPECT_EQ(c.start_probability[2], 0.0);
}

// ---------------------------------------------------------------- misuse
TEST(TransportErrors, MisuseThrowsInvalidArgumentWithClearMessage) {
  const Chain ch;
  const CountsData good = make_chain(ch);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(good, 1); })
                .find("lag index 1 out of range"),
            std::string::npos);
  CountsData empty = good;
  empty.lags[0].rows.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(empty, 0); })
                .find("no transition counts"),
            std::string::npos);
  CountsData zero = good;
  for (auto& t : zero.lags[0].rows) t.count = 0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(zero, 0); })
                .find("no transition counts"),
            std::string::npos);
  CountsData nolags = good;
  nolags.lags.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(nolags, 0); })
                .find("no lags"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_jump_network(nolags, 1.0); })
                .find("no lags"),
            std::string::npos);
  CountsData nosites = good;
  nosites.site_fractional.clear();
  nosites.occupancy.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(nosites, 0); })
                .find("no sites"),
            std::string::npos);
  CountsData badsite = good;
  badsite.lags[0].rows[0].to = 2;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(badsite, 0); })
                .find("site index out of range"),
            std::string::npos);
  CountsData badocc = good;
  badocc.occupancy.push_back(1);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(badocc, 0); })
                .find("occupancy has 3 entries for 2 sites"),
            std::string::npos);
  CountsData singular = good;
  singular.box_h(2, 2) = 0.0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(singular, 0); })
                .find("singular"),
            std::string::npos);

  const auto stats = ionmsm::build_transport_statistics(good, 0);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::exact_diffusion_tensor(stats, 0.0); })
                .find("tau_ps must be finite and > 0"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::exact_diffusion_tensor(stats, NAN); })
                .find("tau_ps"),
            std::string::npos);
  ionmsm::MsdOptions opt;
  opt.n_max = 0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd(stats, 1.0, opt); })
                .find("n_max must be >= 1"),
            std::string::npos);
  opt.n_max = 2;
  opt.method = ionmsm::MsdMethod::replicated;
  opt.replicas = {2, 0, 1};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd(stats, 1.0, opt); })
                .find("replica counts must be >= 1"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd({}, 1.0, {}); })
                .find("empty or inconsistent"),
            std::string::npos);
  ionmsm::MsdCurve one;
  one.time = {1.0};
  one.msd_xx = one.msd_yy = one.msd_zz = one.msd_total = {1.0};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::fit_einstein(one); })
                .find("at least 2 points"),
            std::string::npos);
  ionmsm::MsdCurve three = one;
  three.time = {1.0, 2.0, 3.0};
  three.msd_xx = three.msd_yy = three.msd_zz = three.msd_total = {1.0, 2.0, 3.0};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::fit_einstein(three, 1.0); })
                .find("first_fraction must be in [0, 1)"),
            std::string::npos);
  EXPECT_NEAR(ionmsm::fit_einstein(three, 0.9).D_total, 1.0 / 6.0, 1e-15);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::parse_msd_method("folded"); })
                .find("unknown MSD method 'folded'"),
            std::string::npos);
  for (auto m : {ionmsm::MsdMethod::minimum_image, ionmsm::MsdMethod::replicated,
                 ionmsm::MsdMethod::moments})
    EXPECT_EQ(ionmsm::parse_msd_method(ionmsm::msd_method_name(m)), m);
}
