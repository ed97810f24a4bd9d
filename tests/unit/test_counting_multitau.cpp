// Unit tests for the multitau history mode and the displacement moments of TransitionCounter.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counting.hpp"
#include "ionmsm/counting_full.hpp"
#include "ionmsm/counting_multitau.hpp"

using ionmsm::CountKey;
using ionmsm::HistoryConfig;
using ionmsm::Image;
using ionmsm::SiteImage;
using ionmsm::SiteIndex;
using ionmsm::TransitionCount;
using ionmsm::TransitionCounter;

namespace {

SiteImage at(SiteIndex s, Image n = {0, 0, 0}) {
  SiteImage r;
  r.site = s;
  r.image = n;
  return r;
}

struct Ev {
  bool present = false;
  bool clear_before = false;
  SiteImage where;
};
struct Script {
  std::size_t nsites = 0, natoms = 0;
  std::vector<std::int64_t> samples;
  std::vector<std::vector<Ev>> events;
};

Script random_script(std::uint64_t seed, std::size_t nsites, std::size_t natoms,
                     std::size_t nsamples, int absent_pct, int gap_pct, int image_jump) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> site(0, static_cast<int>(nsites) - 1), step(-1, 1),
      pct(0, 99), gap(2, 5);
  Script sc;
  sc.nsites = nsites;
  sc.natoms = natoms;
  std::vector<Image> img(natoms, Image{0, 0, 0});
  std::int64_t k = 0;
  for (std::size_t i = 0; i < nsamples; ++i) {
    sc.samples.push_back(k);
    k += pct(rng) < gap_pct ? gap(rng) : 1;
    std::vector<Ev> ev(natoms);
    for (std::size_t a = 0; a < natoms; ++a) {
      ev[a].present = pct(rng) >= absent_pct;
      ev[a].clear_before = pct(rng) < 1;
      for (auto& c : img[a]) c += step(rng) * (pct(rng) < 5 ? image_jump : 1);
      ev[a].where = at(site(rng), img[a]);
    }
    sc.events.push_back(std::move(ev));
  }
  return sc;
}

struct Ref {
  std::vector<std::map<CountKey, std::uint64_t>> counts;
  std::vector<std::uint64_t> origins, occupancy;
  std::vector<Eigen::Vector3d> dsum;
  std::vector<Eigen::Matrix3d> dsq;
};

// Independent reference of the multitau rule: an atom's history is cut wherever it misses a
// global sample or is cleared; lag l at level k counts pairs (j, j + l) of one stretch with j a
// multiple of 2^k; origins are the sampled multiples of 2^k with j + l sampled.
Ref reference(const Script& sc, const std::vector<std::int64_t>& lags, std::int64_t m,
              const std::vector<Eigen::Vector3d>& frac, const Eigen::Matrix3d& h) {
  Ref r;
  r.counts.resize(lags.size());
  r.origins.assign(lags.size(), 0);
  r.occupancy.assign(sc.nsites, 0);
  r.dsum.assign(lags.size(), Eigen::Vector3d::Zero());
  r.dsq.assign(lags.size(), Eigen::Matrix3d::Zero());
  std::set<std::int64_t> sampled(sc.samples.begin(), sc.samples.end());
  std::vector<std::int64_t> spacing;
  for (auto l : lags) {
    int k = 0;
    while ((l >> k) > m) ++k;  // lowest level with l / 2^k <= m (l divisible: checked below)
    EXPECT_EQ(l % (std::int64_t{1} << k), 0);
    spacing.push_back(std::int64_t{1} << k);
  }
  for (std::size_t li = 0; li < lags.size(); ++li)
    for (auto j : sc.samples)
      if (j % spacing[li] == 0 && sampled.count(j + lags[li])) ++r.origins[li];
  for (std::size_t a = 0; a < sc.natoms; ++a) {
    std::vector<std::map<std::int64_t, SiteImage>> stretches(1);
    for (std::size_t i = 0; i < sc.samples.size(); ++i) {
      const Ev& e = sc.events[i][a];
      if (e.clear_before || !e.present) {
        if (!stretches.back().empty()) stretches.emplace_back();
      }
      if (!e.present) continue;
      stretches.back()[sc.samples[i]] = e.where;
      ++r.occupancy[static_cast<std::size_t>(e.where.site)];
    }
    for (const auto& st : stretches)
      for (const auto& [j, w] : st)
        for (std::size_t li = 0; li < lags.size(); ++li) {
          if (j % spacing[li] != 0) continue;
          auto it = st.find(j + lags[li]);
          if (it == st.end()) continue;
          CountKey key;
          key.from = w.site;
          key.to = it->second.site;
          for (std::size_t d = 0; d < 3; ++d) key.shift[d] = it->second.image[d] - w.image[d];
          ++r.counts[li][key];
          const Eigen::Vector3d dv =
              h * (frac[static_cast<std::size_t>(key.to)] - frac[static_cast<std::size_t>(key.from)] +
                   Eigen::Vector3d(key.shift[0], key.shift[1], key.shift[2]));
          r.dsum[li] += dv;
          r.dsq[li] += dv * dv.transpose();
        }
  }
  return r;
}

void feed(TransitionCounter& c, std::vector<std::vector<double>>& recs, const Script& sc,
          std::size_t from, std::size_t to, const Eigen::Matrix3d& h) {
  for (std::size_t i = from; i < to; ++i) {
    c.begin_sample(sc.samples[i]);
    c.set_cell(h);
    for (std::size_t a = 0; a < sc.natoms; ++a) {
      const Ev& e = sc.events[i][a];
      if (e.clear_before) c.clear_history(recs[a].data());
      if (e.present) c.add_atom_sample(recs[a].data(), e.where);
    }
  }
}

std::vector<std::vector<double>> fresh(const TransitionCounter& c, std::size_t n) {
  std::vector<std::vector<double>> r(n, std::vector<double>(
                                            static_cast<std::size_t>(c.doubles_per_atom()), 7.0));
  for (auto& x : r) c.clear_history(x.data());
  return r;
}

std::vector<Eigen::Vector3d> random_frac(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Eigen::Vector3d> f;
  for (std::size_t i = 0; i < n; ++i) f.emplace_back(u(rng), u(rng), u(rng));
  return f;
}

Eigen::Matrix3d cell() {
  Eigen::Matrix3d h;
  h << 7.0, 0.5, -0.3, 0.0, 6.5, 0.2, 0.0, 0.0, 8.0;
  return h;
}

void expect_matches(const TransitionCounter& c, const Ref& ref, const std::string& what) {
  EXPECT_EQ(c.occupancy(), ref.occupancy) << what;
  for (std::size_t li = 0; li < c.num_lags(); ++li) {
    EXPECT_EQ(c.n_origins(li), ref.origins[li]) << what << " lag " << c.lag_samples(li);
    std::vector<TransitionCount> want;
    for (const auto& [k, n] : ref.counts[li]) {
      TransitionCount t;
      t.from = k.from;
      t.to = k.to;
      t.shift = k.shift;
      t.count = n;
      want.push_back(t);
    }
    const auto got = c.table(li).rows();
    ASSERT_EQ(got.size(), want.size()) << what << " lag " << c.lag_samples(li);
    for (std::size_t r = 0; r < got.size(); ++r) {
      EXPECT_TRUE(got[r].from == want[r].from && got[r].to == want[r].to &&
                  got[r].shift == want[r].shift && got[r].count == want[r].count)
          << what << " lag " << c.lag_samples(li) << " row " << r;
    }
    if (c.has_moments()) {
      const double scale = 1.0 + ref.dsq[li].cwiseAbs().sum();
      EXPECT_LT((c.displacement_sum(li) - ref.dsum[li]).cwiseAbs().maxCoeff(), 1e-9 * scale);
      EXPECT_LT((c.displacement_sq_sum(li) - ref.dsq[li]).cwiseAbs().maxCoeff(), 1e-9 * scale);
    }
  }
}

}  // namespace

TEST(MultiTauRule, LevelsAndNeighbours) {
  EXPECT_EQ(ionmsm::multitau_level(1, 16), 0);
  EXPECT_EQ(ionmsm::multitau_level(16, 16), 0);
  EXPECT_EQ(ionmsm::multitau_level(17, 16), -1);
  EXPECT_EQ(ionmsm::multitau_level(18, 16), 1);
  EXPECT_EQ(ionmsm::multitau_level(32, 16), 1);
  EXPECT_EQ(ionmsm::multitau_level(1024, 16), 6);
  EXPECT_EQ(ionmsm::multitau_level(1000, 16), -1);
  EXPECT_EQ(ionmsm::multitau_level(1000, 125), 3);
  EXPECT_EQ(ionmsm::multitau_neighbours(17, 16), (std::pair<std::int64_t, std::int64_t>{16, 18}));
  EXPECT_EQ(ionmsm::multitau_neighbours(1000, 16),
            (std::pair<std::int64_t, std::int64_t>{960, 1024}));
  EXPECT_EQ(ionmsm::multitau_neighbours(3, 1), (std::pair<std::int64_t, std::int64_t>{2, 4}));
}

TEST(MultiTauRule, UnrepresentableLagRefusedNamingNeighbours) {
  try {
    TransitionCounter c(3, {1, 17}, HistoryConfig::multitau(16));
    ADD_FAILURE() << "lag 17 with M = 16 accepted";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("lag 17"), std::string::npos) << msg;
    EXPECT_NE(msg.find("16 and 18"), std::string::npos) << msg;
  }
  EXPECT_THROW(TransitionCounter(3, {1}, HistoryConfig::multitau(0)), std::invalid_argument);
  EXPECT_NO_THROW(TransitionCounter(3, {1, 2, 4, 1024}, HistoryConfig::multitau(1)));
}

TEST(MultiTauRule, MemoryPerAtomBelow4KB) {
  // lags up to 10^5 samples, M = 16: levels 0..13
  std::vector<std::int64_t> lags;
  for (std::int64_t l : {1, 2, 5, 10, 16, 20, 48, 96, 192, 512, 1024, 2048, 5120, 10240, 49152,
                         98304})
    lags.push_back(l);
  TransitionCounter c(1000, lags, HistoryConfig::multitau(16));
  EXPECT_LE(c.doubles_per_atom() * 8, 4096);
  EXPECT_EQ(c.stored_levels().back(), 13);
  EXPECT_GE(c.image_radix(), 1000);
  // the same lags in full mode need one double per sample of the longest lag (+ header,
  // change points and one "from" entry per lag)
  EXPECT_EQ(TransitionCounter(1000, lags).doubles_per_atom(),
            ionmsm::FullRecord::kHeader + 98304 + 1 + ionmsm::FullRecord::kChanges +
                static_cast<int>(lags.size()));
}

TEST(MultiTauCounting, HandCheckedLevels) {
  // one atom, M = 2, lags 1, 2, 4 (levels 0, 0, 1): states = sample index % 3
  TransitionCounter c(3, {1, 2, 4}, HistoryConfig::multitau(2));
  EXPECT_EQ(c.lag_level(2), 1);
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  for (int k = 0; k < 9; ++k) {
    c.begin_sample(k);
    c.add_atom_sample(rec.data(), at(k % 3));
  }
  EXPECT_EQ(c.n_origins(0), 8u);
  EXPECT_EQ(c.n_origins(1), 7u);
  EXPECT_EQ(c.n_origins(2), 3u);  // origins 0, 2, 4 (ends 4, 6, 8)
  EXPECT_EQ(c.table(2).total(), 3u);
  // pairs 0->4: 0->1, 2->6: 2->0, 4->8: 1->2
  const auto rows = c.table(2).rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].from, 0);
  EXPECT_EQ(rows[0].to, 1);
  EXPECT_EQ(rows[1].from, 1);
  EXPECT_EQ(rows[1].to, 2);
  EXPECT_EQ(rows[2].from, 2);
  EXPECT_EQ(rows[2].to, 0);
}

TEST(MultiTauCounting, RandomScriptsMatchReference) {
  const std::vector<std::int64_t> lags = {1, 3, 4, 6, 8, 12, 40, 64};
  for (std::int64_t m : {4, 5, 8}) {
    for (std::uint64_t seed : {11u, 12u}) {
      std::vector<std::int64_t> ok;
      for (auto l : lags)
        if (ionmsm::multitau_level(l, m) >= 0) ok.push_back(l);
      const Script sc = random_script(seed, 6, 9, 300, 3, 10, 1);
      const auto frac = random_frac(sc.nsites, seed);
      TransitionCounter c(sc.nsites, ok, HistoryConfig::multitau(m));
      c.set_site_fractional(frac);
      auto recs = fresh(c, sc.natoms);
      feed(c, recs, sc, 0, sc.samples.size(), cell());
      const Ref ref = reference(sc, ok, m, frac, cell());
      expect_matches(c, ref, "M " + std::to_string(m) + " seed " + std::to_string(seed));
      EXPECT_GT(c.table(ok.size() - 1).total(), 10u);
    }
  }
}

TEST(MultiTauCounting, FullModeMomentsMatchReferenceWithoutAbsences) {
  // With every atom present at every sample and M >= the longest lag, multitau (all lags at
  // level 0) and full mode count the same pairs.
  const std::vector<std::int64_t> lags = {1, 2, 5, 9};
  const Script sc = random_script(5, 5, 6, 200, 0, 10, 1);
  const auto frac = random_frac(sc.nsites, 5);
  TransitionCounter full(sc.nsites, lags), mt(sc.nsites, lags, HistoryConfig::multitau(9));
  full.set_site_fractional(frac);
  mt.set_site_fractional(frac);
  auto r1 = fresh(full, sc.natoms);
  auto r2 = fresh(mt, sc.natoms);
  // no clears either
  Script s2 = sc;
  for (auto& ev : s2.events)
    for (auto& e : ev) e.clear_before = false;
  feed(full, r1, s2, 0, s2.samples.size(), cell());
  feed(mt, r2, s2, 0, s2.samples.size(), cell());
  EXPECT_EQ(full.pack_counts(), mt.pack_counts());
  const Ref ref = reference(s2, lags, 9, frac, cell());
  expect_matches(full, ref, "full");
  expect_matches(mt, ref, "multitau");
}

TEST(MultiTauCounting, HugeImageJumpsRebase) {
  // images jump by 10000 cells at a time: offsets leave the radix window and are rebased
  const std::vector<std::int64_t> lags = {1, 2, 4};
  const Script sc = random_script(9, 4, 5, 200, 0, 0, 10000);
  const std::vector<Eigen::Vector3d> frac = random_frac(sc.nsites, 9);
  TransitionCounter c(sc.nsites, lags, HistoryConfig::multitau(2));
  ASSERT_LE(c.image_radix(), 65536);
  auto recs = fresh(c, sc.natoms);
  feed(c, recs, sc, 0, sc.samples.size(), cell());
  expect_matches(c, reference(sc, lags, 2, frac, cell()), "huge jumps");
}

TEST(MultiTauCounting, RestartAndMergeEqualWhole) {
  const std::vector<std::int64_t> lags = {1, 2, 6, 16, 24};
  const Script sc = random_script(21, 5, 8, 260, 2, 10, 1);
  const auto frac = random_frac(sc.nsites, 21);
  const auto cfg = HistoryConfig::multitau(6);
  TransitionCounter whole(sc.nsites, lags, cfg);
  whole.set_site_fractional(frac);
  auto rw = fresh(whole, sc.natoms);
  feed(whole, rw, sc, 0, sc.samples.size(), cell());
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{77}, sc.samples.size()}) {
    TransitionCounter first(sc.nsites, lags, cfg);
    first.set_site_fractional(frac);
    auto recs = fresh(first, sc.natoms);
    feed(first, recs, sc, 0, cut, cell());
    const auto clock = first.pack_clock();
    const auto counts = first.pack_counts();
    const auto mom = first.pack_moments();
    TransitionCounter second(sc.nsites, lags, cfg);
    second.set_site_fractional(frac);
    second.unpack_clock(clock.data(), clock.size());
    second.add_packed_counts(counts.data(), counts.size());
    second.add_packed_moments(mom.data(), mom.size());
    EXPECT_EQ(second.pack_clock(), clock);
    feed(second, recs, sc, cut, sc.samples.size(), cell());
    EXPECT_EQ(second.pack_counts(), whole.pack_counts()) << "cut " << cut;
    EXPECT_EQ(second.pack_clock(), whole.pack_clock()) << "cut " << cut;
    for (std::size_t i = 0; i < lags.size(); ++i) {
      EXPECT_EQ(second.n_origins(i), whole.n_origins(i));
      EXPECT_LT((second.displacement_sq_sum(i) - whole.displacement_sq_sum(i)).norm(),
                1e-9 * (1.0 + whole.displacement_sq_sum(i).norm()));
    }
  }
  // malformed clock buffers are refused
  auto clock = whole.pack_clock();
  TransitionCounter other(sc.nsites, lags, cfg);
  EXPECT_THROW(other.unpack_clock(clock.data(), clock.size() - 1), std::invalid_argument);
  auto bad = clock;
  bad.back() = 3;  // highest level's last slot: not a multiple of 2^k in that slot
  EXPECT_THROW(other.unpack_clock(bad.data(), bad.size()), std::invalid_argument);
  // totals from an appended run
  TransitionCounter t(sc.nsites, lags, cfg);
  t.add_totals(10, {9, 8, 4, 0, 0});
  EXPECT_EQ(t.n_samples(), 10u);
  EXPECT_EQ(t.n_origins(2), 4u);
  EXPECT_THROW(t.add_totals(1, {1}), std::invalid_argument);
  const std::vector<double> three(3, 0.0);
  EXPECT_THROW(t.add_packed_moments(three.data(), 3), std::invalid_argument);
}

TEST(MultiTauCounting, CorruptRecordThrows) {
  TransitionCounter c(3, {1}, HistoryConfig::multitau(2));
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  c.begin_sample(0);
  c.add_atom_sample(rec.data(), at(1));
  c.begin_sample(1);
  rec[ionmsm::MultiTauRecord::kHeader + 0] = -5.0;  // slot of sample 0 at level 0
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(0)), std::invalid_argument);
  EXPECT_EQ(c.table(0).total(), 0u);
}

TEST(CountingMoments, SetSiteFractionalValidates) {
  TransitionCounter c(2, {1});
  EXPECT_THROW(c.set_site_fractional({Eigen::Vector3d::Zero()}), std::invalid_argument);
  EXPECT_THROW(c.set_site_fractional({Eigen::Vector3d::Zero(),
                                      Eigen::Vector3d(std::nan(""), 0.0, 0.0)}),
               std::invalid_argument);
  EXPECT_FALSE(c.has_moments());
}
