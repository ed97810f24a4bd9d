// Event-driven full-history counting (src/ionmsm/counting_full.cpp) against a slow reference,
// in the regime the sparse path exists for: sampling without gaps, atoms that hop rarely, hop
// every sample (more change points than a record keeps) or anything in between, leave and
// re-enter the recording, migrate between counters (MPI ranks), while the cell changes and
// counts are read in the middle of the run.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ionmsm/counting.hpp"

using ionmsm::CountKey;
using ionmsm::Image;
using ionmsm::SiteImage;
using ionmsm::SiteIndex;
using ionmsm::TransitionCounter;

namespace {

struct Ev {
  bool present = true;
  bool clear_before = false;
  SiteImage where;
};

struct Trace {
  std::size_t nsites = 0, natoms = 0;
  std::vector<std::int64_t> samples;      // consecutive unless `gaps`
  std::vector<std::vector<Ev>> events;    // [sample][atom]
  std::vector<Eigen::Matrix3d> cells;     // per sample
  std::vector<std::vector<int>> holder;   // [sample][atom]: which of two counters holds it
};

// Per atom a hop probability from {0.001, 0.02, 0.6} (rare, typical, more change points than
// a record keeps), absences in runs, rare clears; the cell is constant except for a stretch in
// which it changes every sample; atoms migrate between two counters now and then.
Trace make_run(std::uint64_t seed, std::size_t nsites, std::size_t natoms, std::size_t nsamples,
             bool gaps) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Trace r;
  r.nsites = nsites;
  r.natoms = natoms;
  std::vector<double> hop(natoms);
  const double rates[3] = {0.001, 0.02, 0.6};
  for (auto& h : hop) h = rates[static_cast<int>(u(rng) * 3.0)];
  std::vector<SiteImage> at(natoms);
  std::vector<bool> present(natoms, true);
  std::vector<int> hold(natoms);
  for (std::size_t a = 0; a < natoms; ++a) {
    at[a].site = static_cast<SiteIndex>(a % nsites);
    at[a].image = {0, 0, 0};
    hold[a] = static_cast<int>(a % 2);
  }
  Eigen::Matrix3d h;
  h << 7.0, 0.5, -0.3, 0.0, 6.5, 0.2, 0.0, 0.0, 8.0;
  std::int64_t k = 5;
  for (std::size_t i = 0; i < nsamples; ++i) {
    k += (gaps && u(rng) < 0.05) ? 2 + static_cast<std::int64_t>(u(rng) * 3.0) : 1;
    r.samples.push_back(k);
    if (i > nsamples / 3 && i < nsamples / 2) h(0, 0) += 0.01 * (u(rng) - 0.5);  // NPT-like
    r.cells.push_back(h);
    std::vector<Ev> ev(natoms);
    for (std::size_t a = 0; a < natoms; ++a) {
      if (present[a] ? u(rng) < 0.01 : u(rng) < 0.1) present[a] = !present[a];
      if (u(rng) < hop[a]) {
        const int step = u(rng) < 0.5 ? 1 : -1;
        int s = at[a].site + step;
        if (s == static_cast<int>(nsites)) {
          s = 0;
          ++at[a].image[0];
        }
        if (s < 0) {
          s = static_cast<int>(nsites) - 1;
          --at[a].image[0];
        }
        at[a].site = s;
        if (u(rng) < 0.1) at[a].image[2] += u(rng) < 0.5 ? 1 : -1;
      }
      if (u(rng) < 0.02) hold[a] = 1 - hold[a];
      ev[a].present = present[a];
      ev[a].clear_before = u(rng) < 0.002;
      ev[a].where = at[a];
    }
    r.events.push_back(ev);
    r.holder.push_back(hold);
  }
  return r;
}

struct Ref {
  std::vector<std::map<CountKey, std::uint64_t>> counts;
  std::vector<std::uint64_t> occupancy;
  std::vector<Eigen::Vector3d> dsum;
  std::vector<Eigen::Matrix3d> dsq;
};

// Pairs of recorded samples (j, j + l) of one atom, not across a clear.
Ref reference(const Trace& r, const std::vector<std::int64_t>& lags,
              const std::vector<Eigen::Vector3d>& frac) {
  Ref ref;
  ref.counts.resize(lags.size());
  ref.occupancy.assign(r.nsites, 0);
  ref.dsum.assign(lags.size(), Eigen::Vector3d::Zero());
  ref.dsq.assign(lags.size(), Eigen::Matrix3d::Zero());
  std::map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < r.samples.size(); ++i) index[r.samples[i]] = i;
  for (std::size_t a = 0; a < r.natoms; ++a) {
    std::vector<std::map<std::int64_t, SiteImage>> stretches(1);
    for (std::size_t i = 0; i < r.samples.size(); ++i) {
      const Ev& e = r.events[i][a];
      if (e.clear_before) stretches.emplace_back();
      if (!e.present) continue;
      stretches.back()[r.samples[i]] = e.where;
      ++ref.occupancy[static_cast<std::size_t>(e.where.site)];
    }
    for (const auto& st : stretches)
      for (const auto& [j, w] : st)
        for (std::size_t li = 0; li < lags.size(); ++li) {
          auto it = st.find(j + lags[li]);
          if (it == st.end()) continue;
          CountKey key;
          key.from = w.site;
          key.to = it->second.site;
          for (std::size_t d = 0; d < 3; ++d) key.shift[d] = it->second.image[d] - w.image[d];
          ++ref.counts[li][key];
          if (key.from == key.to && key.shift == Image{0, 0, 0}) continue;
          const Eigen::Matrix3d& h = r.cells[index.at(j + lags[li])];
          const Eigen::Vector3d dv =
              h * (frac[static_cast<std::size_t>(key.to)] - frac[static_cast<std::size_t>(key.from)] +
                   Eigen::Vector3d(key.shift[0], key.shift[1], key.shift[2]));
          ref.dsum[li] += dv;
          ref.dsq[li] += dv * dv.transpose();
        }
  }
  return ref;
}

std::vector<Eigen::Vector3d> fractional(std::size_t n) {
  std::vector<Eigen::Vector3d> f;
  for (std::size_t i = 0; i < n; ++i)
    f.emplace_back(0.1 + 0.8 * static_cast<double>(i) / static_cast<double>(n), 0.37 * (i % 3),
                   0.05 * (i % 7));
  return f;
}

// Feeds the run to `ncounters` counters (1 or 2): each atom's record lives in the counter
// that holds it and moves (bytes copied, as MPI does) when the holder changes. Every
// `read_every` samples all counters are read (settled) in the middle of a sample.
// With `quiet`, atoms are skipped as fix msm skips them (TransitionCounter::quiet_until):
// while quiet_allowed(), before their quiet_until and at an unchanged site image; their record
// gets mark_quiet() before anything else uses it. `records` (if given) receives the records at
// the end, brought up to date.
std::vector<TransitionCounter> feed(const Trace& r, const std::vector<std::int64_t>& lags,
                                    const std::vector<Eigen::Vector3d>& frac, int ncounters,
                                    std::size_t read_every, bool quiet = false,
                                    std::vector<std::vector<double>>* records = nullptr,
                                    std::size_t* skipped = nullptr) {
  std::vector<TransitionCounter> c;
  for (int q = 0; q < ncounters; ++q) {
    c.emplace_back(r.nsites, lags);
    c.back().set_site_fractional(frac);
  }
  const std::size_t nd = static_cast<std::size_t>(c[0].doubles_per_atom());
  std::vector<std::vector<double>> rec(r.natoms, std::vector<double>(nd, 3.0));
  for (auto& x : rec) c[0].clear_history(x.data());
  std::vector<int> where(r.natoms);
  for (std::size_t a = 0; a < r.natoms; ++a) where[a] = ncounters == 1 ? 0 : r.holder[0][a];
  std::vector<std::int64_t> until(r.natoms, -1);  // quiet: skip samples before this (-1: none)
  std::vector<SiteImage> last(r.natoms);
  std::int64_t prev = -1;
  for (std::size_t i = 0; i < r.samples.size(); ++i) {
    for (auto& x : c) {
      x.begin_sample(r.samples[i]);
      x.set_cell(r.cells[i]);
    }
    for (std::size_t a = 0; a < r.natoms; ++a) {
      // migration between samples: the record travels, the counters are not told
      if (ncounters == 2 && r.holder[i][a] != where[a]) {
        if (until[a] >= 0) c[static_cast<std::size_t>(where[a])].mark_quiet(rec[a].data(), prev);
        until[a] = -1;
        std::vector<double> moved = rec[a];
        rec[a] = moved;
        where[a] = r.holder[i][a];
      }
      TransitionCounter& x = c[static_cast<std::size_t>(where[a])];
      const Ev& e = r.events[i][a];
      if (read_every > 0 && (i * 7 + a) % read_every == 0) (void)c[0].pack_counts();  // mid-sample
      if (quiet && x.quiet_allowed() && until[a] > r.samples[i] && e.present && !e.clear_before &&
          e.where.site == last[a].site && e.where.image == last[a].image) {
        if (skipped) ++*skipped;
        continue;
      }
      if (until[a] >= 0) x.mark_quiet(rec[a].data(), prev);
      until[a] = -1;
      if (e.clear_before || !e.present) x.drop_atom(rec[a].data());
      if (e.clear_before) x.clear_history(rec[a].data());
      if (e.present) {
        x.add_atom_sample(rec[a].data(), e.where);
        if (quiet) {
          until[a] = x.quiet_until(rec[a].data());
          last[a] = e.where;
        }
      }
    }
    prev = r.samples[i];
  }
  for (std::size_t a = 0; a < r.natoms; ++a)
    if (until[a] >= 0) c[static_cast<std::size_t>(where[a])].mark_quiet(rec[a].data(), prev);
  if (records) *records = rec;
  return c;
}

void expect_sum_matches(const std::vector<TransitionCounter>& c, const Ref& ref,
                        const std::vector<std::int64_t>& lags, const std::string& what) {
  TransitionCounter sum(c[0].nsites(), lags);
  std::vector<Eigen::Vector3d> dsum(lags.size(), Eigen::Vector3d::Zero());
  std::vector<Eigen::Matrix3d> dsq(lags.size(), Eigen::Matrix3d::Zero());
  for (const auto& x : c) {
    const auto packed = x.pack_counts();
    sum.add_packed_counts(packed.data(), packed.size());
    for (std::size_t li = 0; li < lags.size(); ++li) {
      dsum[li] += x.displacement_sum(li);
      dsq[li] += x.displacement_sq_sum(li);
    }
  }
  EXPECT_EQ(sum.occupancy(), ref.occupancy) << what;
  std::uint64_t moves = 0;
  for (std::size_t li = 0; li < lags.size(); ++li) {
    std::map<CountKey, std::uint64_t> got;
    for (const auto& t : sum.table(li).rows()) {
      CountKey k;
      k.from = t.from;
      k.to = t.to;
      k.shift = t.shift;
      got[k] = t.count;
      if (t.from != t.to) moves += t.count;
    }
    EXPECT_TRUE(got == ref.counts[li]) << what << ": lag " << lags[li] << ", " << got.size()
                                       << " rows, reference " << ref.counts[li].size();
    const double scale = 1.0 + ref.dsq[li].cwiseAbs().sum();
    const double err1 = (dsum[li] - ref.dsum[li]).cwiseAbs().maxCoeff();
    const double err2 = (dsq[li] - ref.dsq[li]).cwiseAbs().maxCoeff();
    EXPECT_LT(err1, 1e-9 * scale) << what << ": lag " << lags[li];
    EXPECT_LT(err2, 1e-9 * scale) << what << ": lag " << lags[li];
  }
  EXPECT_GT(moves, 100u) << what;  // the run really hops
}

const std::vector<std::int64_t> kLags = {1, 3, 8, 21, 40};

}  // namespace

TEST(EventCounting, GapFreeRunMatchesReference) {
  for (std::uint64_t seed : {1u, 2u}) {
    const Trace r = make_run(seed, 9, 24, 700, false);
    const auto frac = fractional(r.nsites);
    expect_sum_matches(feed(r, kLags, frac, 1, 0), reference(r, kLags, frac), kLags,
                       "seed " + std::to_string(seed));
  }
}

TEST(EventCounting, MigrationBetweenCountersAndMidSampleReads) {
  // Two counters stand for two MPI ranks: each may hold "negative" parts of counts, the sum is
  // exact. Reads in the middle of samples settle the rates and must not change the result.
  for (std::uint64_t seed : {3u, 4u}) {
    const Trace r = make_run(seed, 7, 20, 600, false);
    const auto frac = fractional(r.nsites);
    const Ref ref = reference(r, kLags, frac);
    expect_sum_matches(feed(r, kLags, frac, 2, 0), ref, kLags, "2 counters");
    expect_sum_matches(feed(r, kLags, frac, 2, 13), ref, kLags, "2 counters, reads");
  }
}

TEST(EventCounting, SamplingGapsSwitchToEveryAtomEverySample) {
  const Trace r = make_run(5, 8, 20, 700, true);
  const auto frac = fractional(r.nsites);
  expect_sum_matches(feed(r, kLags, frac, 2, 29), reference(r, kLags, frac), kLags, "gaps");
}

TEST(EventCounting, RestartRebuildsRatesFromRecords) {
  // A "restart" at several points: clock and counts through buffers, records kept, rates
  // rebuilt from the records (what fix msm's setup does) -- also after a gap-free stretch in
  // which atoms are on the sparse path.
  const Trace r = make_run(6, 6, 16, 400, false);
  const auto frac = fractional(r.nsites);
  const Ref ref = reference(r, kLags, frac);
  for (std::size_t cut : {std::size_t{1}, std::size_t{100}, std::size_t{311}}) {
    TransitionCounter a(r.nsites, kLags);
    a.set_site_fractional(frac);
    std::vector<std::vector<double>> rec(r.natoms,
                                         std::vector<double>(static_cast<std::size_t>(a.doubles_per_atom())));
    for (auto& x : rec) a.clear_history(x.data());
    TransitionCounter* c = &a;
    TransitionCounter b(r.nsites, kLags);
    b.set_site_fractional(frac);
    for (std::size_t i = 0; i < r.samples.size(); ++i) {
      if (i == cut) {
        const auto clock = a.pack_clock();
        const auto counts = a.pack_counts();
        const auto mom = a.pack_moments();
        b.unpack_clock(clock.data(), clock.size());
        b.add_packed_counts(counts.data(), counts.size());
        b.add_packed_moments(mom.data(), mom.size());
        b.set_cell(r.cells[i - 1]);
        b.reset_rates();
        for (const auto& x : rec) b.restore_atom(x.data());
        c = &b;
      }
      c->begin_sample(r.samples[i]);
      c->set_cell(r.cells[i]);
      for (std::size_t q = 0; q < r.natoms; ++q) {
        const Ev& e = r.events[i][q];
        if (e.clear_before || !e.present) c->drop_atom(rec[q].data());
        if (e.clear_before) c->clear_history(rec[q].data());
        if (e.present) c->add_atom_sample(rec[q].data(), e.where);
      }
    }
    std::vector<TransitionCounter> only;
    only.push_back(b);
    expect_sum_matches(only, ref, kLags, "restart at " + std::to_string(cut));
  }
}

TEST(EventCounting, MissedSampleWithoutDropThrows) {
  TransitionCounter c(3, {1, 2});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  SiteImage s;
  s.site = 1;
  s.image = {0, 0, 0};
  c.begin_sample(0);
  c.add_atom_sample(rec.data(), s);
  c.begin_sample(1);  // the atom is neither added nor dropped here
  c.begin_sample(2);
  EXPECT_THROW(c.add_atom_sample(rec.data(), s), std::invalid_argument);
  EXPECT_THROW(c.drop_atom(rec.data()), std::invalid_argument);
  // dropped in time, the same history is fine
  TransitionCounter d(3, {1, 2});
  d.clear_history(rec.data());
  d.begin_sample(0);
  d.add_atom_sample(rec.data(), s);
  d.begin_sample(1);
  d.drop_atom(rec.data());
  d.drop_atom(rec.data());  // a second drop is a no-op
  d.begin_sample(2);
  d.add_atom_sample(rec.data(), s);
  EXPECT_EQ(d.table(1).total(), 1u);  // (0, 2) across the gap
  EXPECT_EQ(d.table(0).total(), 0u);
  EXPECT_EQ(d.occupancy(), (std::vector<std::uint64_t>{0, 2, 0}));
}

TEST(EventCounting, QuietSamplesLeaveCountsAndRecordsUnchanged) {
  // fix msm skips atoms that stay on their site image (quiet_until / mark_quiet): counts,
  // moments and every record byte must equal those of passing every atom at every sample,
  // with migration, gaps, drops, clears and mid-sample reads.
  for (bool gaps : {false, true}) {
    const Trace r = make_run(gaps ? 11 : 12, 8, 24, 700, gaps);
    const auto frac = fractional(r.nsites);
    const Ref ref = reference(r, kLags, frac);
    for (int ncounters : {1, 2}) {
      std::vector<std::vector<double>> every, quiet;
      std::size_t skipped = 0;
      const auto a = feed(r, kLags, frac, ncounters, 0, false, &every);
      const auto b = feed(r, kLags, frac, ncounters, 17, true, &quiet, &skipped);
      const std::string what = std::string(gaps ? "gaps, " : "") + std::to_string(ncounters) +
                               " counter(s)";
      expect_sum_matches(b, ref, kLags, "quiet, " + what);
      EXPECT_EQ(quiet, every) << what;  // records bit for bit (doubles compared exactly)
      // without gaps the rare-hopping third of the atoms at least is skipped most of the time;
      // gaps (5 % of the samples) keep every atom on the event path for 40 samples after each
      if (gaps)
        EXPECT_GT(skipped, 0u) << what;
      else
        EXPECT_GT(skipped, r.samples.size() * r.natoms / 4) << what;
    }
  }
}

TEST(EventCounting, QuietSampleMisuseThrows) {
  TransitionCounter c(3, {1, 2});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  EXPECT_EQ(c.quiet_until(rec.data()), -1);  // not recorded yet
  SiteImage s;
  s.site = 1;
  s.image = {0, 0, 0};
  c.begin_sample(0);
  EXPECT_THROW(c.mark_quiet(rec.data(), 0), std::invalid_argument);  // not being recorded
  c.add_atom_sample(rec.data(), s);
  EXPECT_EQ(c.quiet_until(rec.data()), 1);  // the pair of lag 1 changes at sample 1
  c.begin_sample(1);
  EXPECT_THROW(c.mark_quiet(rec.data(), 1), std::invalid_argument);  // not before quiet_until
  c.add_atom_sample(rec.data(), s);
  EXPECT_EQ(c.quiet_until(rec.data()), 2);  // lag 2
  c.begin_sample(2);
  c.add_atom_sample(rec.data(), s);
  EXPECT_GT(c.quiet_until(rec.data()), std::int64_t{1} << 40);  // nothing changes any more
  c.begin_sample(3);
  EXPECT_TRUE(c.quiet_allowed());
  EXPECT_THROW(c.mark_quiet(rec.data(), 4), std::invalid_argument);  // after the current sample
  c.mark_quiet(rec.data(), 3);
  EXPECT_THROW(c.mark_quiet(rec.data(), 2), std::invalid_argument);  // before its last sample
  c.begin_sample(5);  // a sampling gap: no atom may skip for max_lag samples
  EXPECT_FALSE(c.quiet_allowed());
  c.drop_atom(rec.data());
  EXPECT_EQ(c.quiet_until(rec.data()), -1);
  TransitionCounter m(3, {1, 2}, ionmsm::HistoryConfig::multitau(4));
  std::vector<double> mr(static_cast<std::size_t>(m.doubles_per_atom()));
  m.clear_history(mr.data());
  m.begin_sample(0);
  m.add_atom_sample(mr.data(), s);
  EXPECT_EQ(m.quiet_until(mr.data()), -1);
  EXPECT_FALSE(m.quiet_allowed());
  EXPECT_THROW(m.mark_quiet(mr.data(), 0), std::invalid_argument);
}
