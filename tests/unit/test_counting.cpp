// Unit tests for CountTable and TransitionCounter (src/ionmsm/counting.*).
#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counting.hpp"
#include "ionmsm/counting_full.hpp"

using ionmsm::CountKey;
using ionmsm::CountTable;
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

TransitionCount row(SiteIndex from, SiteIndex to, Image shift, std::uint64_t count) {
  TransitionCount r;
  r.from = from;
  r.to = to;
  r.shift = shift;
  r.count = count;
  return r;
}

bool operator_eq(const TransitionCount& a, const TransitionCount& b) {
  return a.from == b.from && a.to == b.to && a.shift == b.shift && a.count == b.count;
}

std::string dump(const std::vector<TransitionCount>& rows) {
  std::string s;
  for (const auto& r : rows) {
    s += "(" + std::to_string(r.from) + "->" + std::to_string(r.to) + " [" +
         std::to_string(r.shift[0]) + "," + std::to_string(r.shift[1]) + "," +
         std::to_string(r.shift[2]) + "] x" + std::to_string(r.count) + ") ";
  }
  return s;
}

void expect_rows(const std::vector<TransitionCount>& got, const std::vector<TransitionCount>& want,
                 const std::string& what) {
  bool equal = got.size() == want.size();
  for (std::size_t i = 0; equal && i < got.size(); ++i) equal = operator_eq(got[i], want[i]);
  EXPECT_TRUE(equal) << what << "\n got:  " << dump(got) << "\n want: " << dump(want);
}

std::vector<TransitionCount> rows_of(const std::map<CountKey, std::uint64_t>& m) {
  std::vector<TransitionCount> out;
  for (const auto& [k, n] : m) out.push_back(row(k.from, k.to, k.shift, n));
  return out;
}

// Everything observable about a counter, for equality checks.
void expect_same_counter(const TransitionCounter& a, const TransitionCounter& b,
                         const std::string& what) {
  ASSERT_EQ(a.num_lags(), b.num_lags()) << what;
  EXPECT_EQ(a.n_samples(), b.n_samples()) << what;
  EXPECT_EQ(a.occupancy(), b.occupancy()) << what;
  for (std::size_t i = 0; i < a.num_lags(); ++i) {
    EXPECT_EQ(a.n_origins(i), b.n_origins(i)) << what << " lag " << i;
    expect_rows(a.table(i).rows(), b.table(i).rows(), what + " lag " + std::to_string(i));
  }
  EXPECT_EQ(a.pack_counts(), b.pack_counts()) << what;
  EXPECT_EQ(a.pack_clock(), b.pack_clock()) << what;
}

// ---------------------------------------------------------------------- random trajectories

// One event of a scripted run: at a sample, for each atom: absent, present, or cleared and
// then present (re-entering the group).
struct AtomEvent {
  bool present = false;
  bool clear_before = false;
  SiteImage where;
};
struct Script {
  std::size_t nsites = 0;
  std::size_t natoms = 0;
  std::vector<std::int64_t> samples;           // increasing, with gaps
  std::vector<std::vector<AtomEvent>> events;  // [sample][atom]
};

Script random_script(std::uint64_t seed, std::size_t nsites, std::size_t natoms,
                     std::size_t nsamples) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> site(0, static_cast<int>(nsites) - 1), small(-3, 3),
      big(-500, 500), pct(0, 99), gap(1, 4);
  Script sc;
  sc.nsites = nsites;
  sc.natoms = natoms;
  std::int64_t k = gap(rng) - 1;
  for (std::size_t i = 0; i < nsamples; ++i) {
    sc.samples.push_back(k);
    // Mostly consecutive samples, sometimes skipping values.
    k += (pct(rng) < 70) ? 1 : gap(rng);
    std::vector<AtomEvent> ev(natoms);
    for (auto& e : ev) {
      e.present = pct(rng) < 90;
      e.clear_before = pct(rng) < 3;
      const int p = pct(rng);
      // Many stays at image 0, some moves, some with large images (overflow path).
      const SiteIndex s = site(rng);
      Image n{0, 0, 0};
      if (p >= 60 && p < 95) n = {small(rng), small(rng), small(rng)};
      if (p >= 95) n = {big(rng), small(rng), big(rng)};
      e.where = at(s, n);
    }
    sc.events.push_back(std::move(ev));
  }
  return sc;
}

// Slow reference: keeps each atom's full trajectory (reset by clears) and counts pairs.
struct Reference {
  std::vector<std::map<CountKey, std::uint64_t>> counts;
  std::vector<std::uint64_t> origins;
  std::vector<std::uint64_t> occupancy;
  std::uint64_t n_samples = 0;
};

Reference reference_count(const Script& sc, const std::vector<std::int64_t>& lags,
                          std::size_t first_atom = 0, std::size_t end_atom = SIZE_MAX) {
  end_atom = std::min(end_atom, sc.natoms);
  Reference ref;
  ref.counts.resize(lags.size());
  ref.origins.assign(lags.size(), 0);
  ref.occupancy.assign(sc.nsites, 0);
  ref.n_samples = sc.samples.size();
  // origins: sampled k with k - l sampled
  for (std::size_t i = 0; i < sc.samples.size(); ++i)
    for (std::size_t li = 0; li < lags.size(); ++li)
      for (std::size_t j = 0; j < i; ++j)
        if (sc.samples[j] == sc.samples[i] - lags[li]) ++ref.origins[li];
  for (std::size_t a = first_atom; a < end_atom; ++a) {
    struct Entry {
      std::int64_t sample;
      SiteImage where;
    };
    // The atom's full trajectory, cut into segments at every history clear.
    std::vector<std::vector<Entry>> segments(1);
    for (std::size_t i = 0; i < sc.samples.size(); ++i) {
      const AtomEvent& e = sc.events[i][a];
      if (e.clear_before) segments.emplace_back();
      if (!e.present) continue;
      segments.back().push_back({sc.samples[i], e.where});
      ++ref.occupancy[static_cast<std::size_t>(e.where.site)];
    }
    // double loop over (origin, end) pairs within each segment
    for (const std::vector<Entry>& traj : segments)
      for (std::size_t p = 0; p < traj.size(); ++p) {
        for (std::size_t q = p + 1; q < traj.size(); ++q) {
          for (std::size_t li = 0; li < lags.size(); ++li) {
            if (traj[q].sample - traj[p].sample != lags[li]) continue;
            CountKey key;
            key.from = traj[p].where.site;
            key.to = traj[q].where.site;
            for (int d = 0; d < 3; ++d) {
              key.shift[static_cast<std::size_t>(d)] =
                  traj[q].where.image[static_cast<std::size_t>(d)] -
                  traj[p].where.image[static_cast<std::size_t>(d)];
            }
            ++ref.counts[li][key];
          }
        }
      }
  }
  return ref;
}

// Feeds samples [from, to) of the script to a counter, with per-atom records.
void feed(TransitionCounter& c, std::vector<std::vector<double>>& records, const Script& sc,
          std::size_t from, std::size_t to, std::size_t first_atom = 0,
          std::size_t end_atom = SIZE_MAX) {
  end_atom = std::min(end_atom, sc.natoms);
  for (std::size_t i = from; i < to; ++i) {
    c.begin_sample(sc.samples[i]);
    for (std::size_t a = first_atom; a < end_atom; ++a) {
      const AtomEvent& e = sc.events[i][a];
      // an atom not recorded at a sample is dropped (fix msm: atoms outside its group)
      if (e.clear_before || !e.present) c.drop_atom(records[a].data());
      if (e.clear_before) c.clear_history(records[a].data());
      if (e.present) c.add_atom_sample(records[a].data(), e.where);
    }
  }
}

std::vector<std::vector<double>> fresh_records(const TransitionCounter& c, std::size_t natoms) {
  std::vector<std::vector<double>> r(
      natoms, std::vector<double>(static_cast<std::size_t>(c.doubles_per_atom())));
  for (auto& rec : r) c.clear_history(rec.data());
  return r;
}

const std::vector<std::int64_t> kLags = {1, 2, 5, 17};

}  // namespace

// ------------------------------------------------------------------------------- hand-checked

TEST(CountingHand, SingleAtomThreeLags) {
  // states [0,0,1,0,1,1,0] at samples 0..6, one atom, no shifts.
  TransitionCounter c(2, {1, 2, 3});
  EXPECT_EQ(c.doubles_per_atom(),
            ionmsm::FullRecord::kHeader + 3 + 1 + ionmsm::FullRecord::kChanges + 3);
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()), 123.0);
  c.clear_history(rec.data());
  EXPECT_EQ(rec[ionmsm::FullRecord::kLastSeen], -1.0);  // no sample yet
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(rec[static_cast<std::size_t>(ionmsm::FullRecord::kHeader + s)], -1.0);
  const SiteIndex states[7] = {0, 0, 1, 0, 1, 1, 0};
  for (int k = 0; k < 7; ++k) {
    c.begin_sample(k);
    c.add_atom_sample(rec.data(), at(states[k]));
  }
  EXPECT_EQ(c.n_samples(), 7u);
  EXPECT_EQ(c.current_sample(), 6);
  // lag 1 pairs: (0,0),(0,1),(1,0),(0,1),(1,1),(1,0)
  expect_rows(c.table(0).rows(),
              {row(0, 0, {0, 0, 0}, 1), row(0, 1, {0, 0, 0}, 2), row(1, 0, {0, 0, 0}, 2),
               row(1, 1, {0, 0, 0}, 1)},
              "lag 1");
  // lag 2 pairs: s0->s2 (0,1), s1->s3 (0,0), s2->s4 (1,1), s3->s5 (0,1), s4->s6 (1,0)
  expect_rows(c.table(1).rows(),
              {row(0, 0, {0, 0, 0}, 1), row(0, 1, {0, 0, 0}, 2), row(1, 0, {0, 0, 0}, 1),
               row(1, 1, {0, 0, 0}, 1)},
              "lag 2");
  // lag 3 pairs: s0->s3 (0,0), s1->s4 (0,1), s2->s5 (1,1), s3->s6 (0,0)
  expect_rows(c.table(2).rows(),
              {row(0, 0, {0, 0, 0}, 2), row(0, 1, {0, 0, 0}, 1), row(1, 1, {0, 0, 0}, 1)}, "lag 3");
  EXPECT_EQ(c.table(0).total(), 6u);
  EXPECT_EQ(c.table(1).total(), 5u);
  EXPECT_EQ(c.table(2).total(), 4u);
  EXPECT_EQ(c.n_origins(0), 6u);
  EXPECT_EQ(c.n_origins(1), 5u);
  EXPECT_EQ(c.n_origins(2), 4u);
  EXPECT_EQ(c.occupancy(), (std::vector<std::uint64_t>{4, 3}));
}

TEST(CountingHand, ShiftsAndGapsByHand) {
  // Lag 2 only; samples 0,1,2,4,5,6 (3 skipped). Atom: sample 0 site 1 image (0,0,0); sample 2
  // site 0 image (1,0,0); sample 4 site 0 image (1,0,-1); sample 6 site 2 image (0,0,0); absent
  // at 1 and 5.
  TransitionCounter c(3, {2});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  c.begin_sample(0);
  c.add_atom_sample(rec.data(), at(1));
  c.begin_sample(1);
  c.drop_atom(rec.data());  // absent
  c.begin_sample(2);
  c.add_atom_sample(rec.data(), at(0, {1, 0, 0}));
  c.begin_sample(4);
  c.add_atom_sample(rec.data(), at(0, {1, 0, -1}));
  c.begin_sample(5);
  c.drop_atom(rec.data());
  c.begin_sample(6);
  c.add_atom_sample(rec.data(), at(2, {0, 0, 0}));
  // origins for lag 2: (0,2), (2,4), (4,6) -> 3 ; (1,3) no, (3,5) no.
  EXPECT_EQ(c.n_origins(0), 3u);
  EXPECT_EQ(c.n_samples(), 6u);
  // pairs: 0->2: 1->0 shift (1,0,0); 2->4: 0->0 shift (0,0,-1); 4->6: 0->2 shift (-1,0,1)
  expect_rows(c.table(0).rows(),
              {row(0, 0, {0, 0, -1}, 1), row(0, 2, {-1, 0, 1}, 1), row(1, 0, {1, 0, 0}, 1)},
              "lag 2 with shifts");
  EXPECT_EQ(c.occupancy(), (std::vector<std::uint64_t>{2, 1, 1}));
}

// ------------------------------------------------------------------ random vs slow reference

TEST(CountingReference, RandomTrajectoriesMatchSlowReference) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Script sc = random_script(seed, 7, 12, 160);
    TransitionCounter c(sc.nsites, kLags);
    auto records = fresh_records(c, sc.natoms);
    feed(c, records, sc, 0, sc.samples.size());
    const Reference ref = reference_count(sc, kLags);
    EXPECT_EQ(c.n_samples(), ref.n_samples);
    EXPECT_EQ(c.occupancy(), ref.occupancy);
    std::uint64_t total = 0;
    for (std::size_t li = 0; li < kLags.size(); ++li) {
      EXPECT_EQ(c.n_origins(li), ref.origins[li]) << "seed " << seed << " lag " << kLags[li];
      expect_rows(c.table(li).rows(), rows_of(ref.counts[li]),
                  "seed " + std::to_string(seed) + " lag " + std::to_string(kLags[li]));
      total += c.table(li).total();
    }
    EXPECT_GT(total, 1000u);  // the script really produces counts at all lags
    EXPECT_GT(c.table(3).total(), 50u);
  }
}

TEST(CountingReference, ClearedHistoriesStopCounting) {
  // Clearing an atom's history mid-run: no pair spans the clear.
  TransitionCounter c(4, {1, 2});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  for (int k = 0; k < 6; ++k) {
    c.begin_sample(k);
    if (k == 3) {
      c.drop_atom(rec.data());
      c.clear_history(rec.data());
    }
    c.add_atom_sample(rec.data(), at(k % 4));
  }
  // sites 0,1,2 | 3,0,1 (clear before sample 3)
  // lag 1 pairs: 0->1, 1->2, (2->3 cut), 3->0, 0->1; lag 2: 0->2, (1->3, 2->0 cut), 3->1
  expect_rows(c.table(0).rows(),
              {row(0, 1, {0, 0, 0}, 2), row(1, 2, {0, 0, 0}, 1), row(3, 0, {0, 0, 0}, 1)}, "lag 1");
  expect_rows(c.table(1).rows(), {row(0, 2, {0, 0, 0}, 1), row(3, 1, {0, 0, 0}, 1)}, "lag 2");
  EXPECT_EQ(c.n_origins(0), 5u);  // origins are global, not per atom
  EXPECT_EQ(c.n_origins(1), 4u);
}

// Atoms drifting over many periodic images (far beyond the radix R of the packed entries)
// with back-and-forth steps: exercises the rebase of full-mode records.
Script drift_script(std::uint64_t seed, std::size_t nsites, std::size_t natoms,
                    std::size_t nsamples, int step) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> lowsite(0, 6), pct(0, 99), gap(1, 4), dx(step / 2, step),
      dy(-step, step);
  std::uniform_int_distribution<SiteIndex> anysite(0, static_cast<SiteIndex>(nsites) - 1);
  Script sc;
  sc.nsites = nsites;
  sc.natoms = natoms;
  std::vector<Image> img(natoms, Image{0, 0, 0});
  for (std::size_t a = 0; a < natoms; ++a) img[a][2] = static_cast<std::int32_t>(a) * 100000;
  std::int64_t k = 0;
  for (std::size_t i = 0; i < nsamples; ++i) {
    sc.samples.push_back(k);
    k += (pct(rng) < 80) ? 1 : gap(rng);
    std::vector<AtomEvent> ev(natoms);
    for (std::size_t a = 0; a < natoms; ++a) {
      AtomEvent& e = ev[a];
      e.present = pct(rng) < 92;
      e.clear_before = pct(rng) < 2;
      if (pct(rng) < 60) {  // move: drift in x, wander in y, stay in z
        img[a][0] += dx(rng);
        img[a][1] += dy(rng);
      }
      e.where = at(pct(rng) < 90 ? lowsite(rng) : anysite(rng), img[a]);
    }
    sc.events.push_back(std::move(ev));
  }
  return sc;
}

TEST(CountingReference, FullRecordsRebaseOverManyImages) {
  // (2^17 + 3 sites: S = 2^18, R = 2^11) and (7 sites: R = 2^16): images travel > 3 R in x
  // and wander in y; every pair still matches the reference.
  struct Case {
    std::size_t nsites;
    std::int64_t radix;
    int step;
  };
  for (const Case& cs : {Case{(std::size_t{1} << 17) + 3, 2048, 60}, Case{7, 65536, 1900}}) {
    for (std::uint64_t seed : {11u, 12u}) {
      const Script sc = drift_script(seed, cs.nsites, 6, 300, cs.step);
      TransitionCounter c(sc.nsites, kLags);
      EXPECT_EQ(c.image_radix(), cs.radix);
      auto records = fresh_records(c, sc.natoms);
      feed(c, records, sc, 0, sc.samples.size());
      const Reference ref = reference_count(sc, kLags);
      EXPECT_EQ(c.occupancy(), ref.occupancy);
      for (std::size_t li = 0; li < kLags.size(); ++li) {
        EXPECT_EQ(c.n_origins(li), ref.origins[li]);
        expect_rows(c.table(li).rows(), rows_of(ref.counts[li]),
                    "nsites " + std::to_string(cs.nsites) + " seed " + std::to_string(seed) +
                        " lag " + std::to_string(kLags[li]));
      }
      // the x images really left the radix range many times
      std::int32_t xmax = 0;
      for (const auto& ev : sc.events) xmax = std::max(xmax, std::abs(ev[0].where.image[0]));
      EXPECT_GT(xmax, 3 * cs.radix);
    }
  }
}

TEST(CountingMisuse, FullRecordSpanBeyondRadixThrowsWithoutSideEffects) {
  // R = 2048 (2^17 + 3 sites, longest lag 4): images spanning more than R - 1 within the window
  // cannot be stored; the sample throws and changes neither the record nor the counts.
  const std::size_t ns = (std::size_t{1} << 17) + 3;
  TransitionCounter c(ns, {1, 4});
  ASSERT_EQ(c.image_radix(), 2048);
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  c.begin_sample(0);
  c.add_atom_sample(rec.data(), at(5, {0, 0, 0}));
  c.begin_sample(1);
  c.add_atom_sample(rec.data(), at(6, {2047, 0, 0}));  // span 2047: rebased, fits
  c.begin_sample(2);
  const std::vector<double> before = rec;
  const auto counts_before = c.pack_counts();
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(6, {-1, 0, 0})), std::invalid_argument);
  EXPECT_EQ(rec, before);
  EXPECT_EQ(c.pack_counts(), counts_before);
  c.add_atom_sample(rec.data(), at(7, {1000, 0, 0}));  // fits: counted
  // lag 1: 5->6 (2047,0,0), 6->7 (-1047,0,0); lag 4: nothing yet
  expect_rows(c.table(0).rows(),
              {row(5, 6, {2047, 0, 0}, 1), row(6, 7, {-1047, 0, 0}, 1)}, "lag 1");
  c.begin_sample(4);  // lag 4: 0 -> 4, the window still holds image 0 at sample 0
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(5, {2048, 0, 0})), std::invalid_argument);
  c.add_atom_sample(rec.data(), at(5, {2000, 3, -4}));
  expect_rows(c.table(1).rows(), {row(5, 5, {2000, 3, -4}, 1)}, "lag 4");
  c.begin_sample(9);  // nothing in the window any more: any image starts afresh
  c.add_atom_sample(rec.data(), at(5, {-100000, 7, 7}));
  EXPECT_EQ(c.table(0).total(), 2u);
  EXPECT_EQ(c.table(1).total(), 1u);
}

// ------------------------------------------------------------------- packing, merging, restart

TEST(CountingPack, PackRoundTripAndMergeEqualsSingleCounter) {
  const Script sc = random_script(42, 9, 10, 120);
  TransitionCounter all(sc.nsites, kLags), a(sc.nsites, kLags), b(sc.nsites, kLags);
  auto r_all = fresh_records(all, sc.natoms);
  auto r_a = fresh_records(a, sc.natoms);
  auto r_b = fresh_records(b, sc.natoms);
  feed(all, r_all, sc, 0, sc.samples.size());
  // "Two ranks": both see every sample, each owns half of the atoms.
  feed(a, r_a, sc, 0, sc.samples.size(), 0, 4);
  feed(b, r_b, sc, 0, sc.samples.size(), 4, SIZE_MAX);
  EXPECT_NE(a.occupancy(), all.occupancy());

  // Round trip: an empty counter plus the packed counts reproduces the counts.
  TransitionCounter copy(sc.nsites, kLags);
  const std::vector<std::int64_t> buf = all.pack_counts();
  ASSERT_GE(buf.size(), 2u + sc.nsites);
  EXPECT_EQ(buf[0], static_cast<std::int64_t>(sc.nsites));
  EXPECT_EQ(buf.size(), 2u + sc.nsites + 7u * static_cast<std::size_t>(buf[1]));
  copy.add_packed_counts(buf.data(), buf.size());
  EXPECT_EQ(copy.pack_counts(), buf);
  EXPECT_EQ(copy.occupancy(), all.occupancy());
  for (std::size_t li = 0; li < kLags.size(); ++li) {
    expect_rows(copy.table(li).rows(), all.table(li).rows(), "round trip");
  }

  // Merge b into a.
  const std::vector<std::int64_t> pb = b.pack_counts();
  a.add_packed_counts(pb.data(), pb.size());
  expect_same_counter(a, all, "merged");

  // Adding twice doubles everything; clear_counts zeroes counts but not the clock.
  copy.add_packed_counts(buf.data(), buf.size());
  for (std::size_t li = 0; li < kLags.size(); ++li) {
    EXPECT_EQ(copy.table(li).total(), 2 * all.table(li).total());
  }
  copy.begin_sample(5);
  copy.clear_counts();
  EXPECT_EQ(copy.current_sample(), 5);
  EXPECT_EQ(copy.n_samples(), 1u);
  for (std::size_t li = 0; li < kLags.size(); ++li) EXPECT_TRUE(copy.table(li).rows().empty());
  EXPECT_EQ(copy.occupancy(), std::vector<std::uint64_t>(sc.nsites, 0));
}

TEST(CountingPack, ClockRestartContinuesIdentically) {
  const Script sc = random_script(77, 6, 8, 140);
  TransitionCounter whole(sc.nsites, kLags);
  auto r_whole = fresh_records(whole, sc.natoms);
  feed(whole, r_whole, sc, 0, sc.samples.size());

  for (std::size_t cut :
       {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{63}, sc.samples.size()}) {
    TransitionCounter first(sc.nsites, kLags);
    auto recs = fresh_records(first, sc.natoms);
    feed(first, recs, sc, 0, cut);
    // "Restart": clock and counts go through int64 buffers; per-atom records are kept as is.
    const std::vector<std::int64_t> clock = first.pack_clock();
    EXPECT_EQ(clock.size(), 4u + kLags.size() + static_cast<std::size_t>(kLags.back()));
    const std::vector<std::int64_t> counts = first.pack_counts();
    TransitionCounter second(sc.nsites, kLags);
    second.unpack_clock(clock.data(), clock.size());
    second.add_packed_counts(counts.data(), counts.size());
    EXPECT_EQ(second.pack_clock(), clock);
    EXPECT_EQ(second.has_sample(), first.has_sample());
    // the rates of the atoms' open pairs come from the records (fix msm::setup does this)
    second.reset_rates();
    for (const auto& r : recs) second.restore_atom(r.data());
    // quiet samples resume where the uninterrupted count resumes them (same dense window)
    if (cut < sc.samples.size()) {
      TransitionCounter probe_a(sc.nsites, kLags), probe_b(sc.nsites, kLags);
      probe_a.unpack_clock(clock.data(), clock.size());
      const auto whole_clock = [&] {
        TransitionCounter w(sc.nsites, kLags);
        auto rw = fresh_records(w, sc.natoms);
        feed(w, rw, sc, 0, cut);
        return w.pack_clock();
      }();
      probe_b.unpack_clock(whole_clock.data(), whole_clock.size());
      EXPECT_EQ(probe_a.quiet_allowed(), probe_b.quiet_allowed()) << "restart at " << cut;
    }
    feed(second, recs, sc, cut, sc.samples.size());
    expect_same_counter(second, whole, "restart at " + std::to_string(cut));
  }
}

TEST(CountingPack, MalformedBuffersThrowAndChangeNothing) {
  TransitionCounter c(3, {1, 4});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  for (int k = 0; k < 6; ++k) {
    c.begin_sample(k);
    c.add_atom_sample(rec.data(), at(k % 3, {k, 0, 0}));
  }
  const std::vector<std::int64_t> good = c.pack_counts();
  ASSERT_GT(good[1], 0);
  const std::vector<std::int64_t> before = c.pack_counts();
  auto expect_bad = [&](std::vector<std::int64_t> buf, const char* what) {
    EXPECT_THROW(c.add_packed_counts(buf.data(), buf.size()), std::invalid_argument) << what;
    EXPECT_EQ(c.pack_counts(), before) << what << ": a rejected buffer changed the counts";
  };
  const std::size_t row0 = 2 + 3;  // first row offset
  {
    auto b = good;
    b[0] = 4;
    expect_bad(b, "wrong nsites");
  }
  {
    auto b = good;
    b.pop_back();
    expect_bad(b, "truncated");
  }
  {
    auto b = good;
    b.push_back(0);
    expect_bad(b, "trailing data");
  }
  {
    auto b = good;
    b[1] = -1;
    expect_bad(b, "negative row count");
  }
  {
    auto b = good;
    b[1] = INT64_MAX / 2;
    expect_bad(b, "huge row count");
  }
  {
    auto b = good;
    b[row0 + 7 * (static_cast<std::size_t>(good[1]) - 1)] = 2;  // last row: lag index 2 of 2
    expect_bad(b, "lag index");
  }
  {
    auto b = good;
    b[row0 + 1] = -1;
    expect_bad(b, "negative from");
  }
  {
    auto b = good;
    b[row0 + 2] = 3;
    expect_bad(b, "to out of range");
  }
  {
    auto b = good;
    b[row0 + 3] = std::int64_t{1} << 40;
    expect_bad(b, "shift out of int32 range");
  }
  expect_bad({}, "empty");
  expect_bad({3}, "one value");
  EXPECT_THROW(c.add_packed_counts(nullptr, 5), std::invalid_argument);

  // Clock buffers.
  std::vector<std::int64_t> clock = c.pack_clock();
  EXPECT_THROW(c.unpack_clock(clock.data(), clock.size() - 2), std::invalid_argument);
  EXPECT_THROW(c.unpack_clock(clock.data(), clock.size() + 1), std::invalid_argument);
  {
    // a clock of an older restart file (without the end of the dense window) is accepted
    TransitionCounter old_clock(3, {1, 4});
    std::vector<std::int64_t> c1 = clock;
    c1.pop_back();
    EXPECT_NO_THROW(old_clock.unpack_clock(c1.data(), c1.size()));
    auto bad_dense = clock;
    bad_dense.back() = -5;
    EXPECT_THROW(old_clock.unpack_clock(bad_dense.data(), bad_dense.size()), std::invalid_argument);
  }
  auto bad_clock = clock;
  bad_clock[1] = 2;
  EXPECT_THROW(c.unpack_clock(bad_clock.data(), bad_clock.size()), std::invalid_argument);
  bad_clock = clock;
  bad_clock[3 + 2] = 7;  // ring slot 0 must hold a multiple of 4 (or -1)
  EXPECT_THROW(c.unpack_clock(bad_clock.data(), bad_clock.size()), std::invalid_argument);
  EXPECT_EQ(c.pack_clock(), clock);
}

// ------------------------------------------------------------------------------------- misuse

TEST(CountingMisuse, ConstructorValidatesLagsAndSites) {
  EXPECT_THROW(TransitionCounter(0, {1}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(3, {}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(3, {0}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(3, {-2, 1}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(3, {2, 1}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(3, {1, 1}), std::invalid_argument);
  EXPECT_THROW(TransitionCounter(std::size_t{1} << 32, {1}), std::invalid_argument);
  EXPECT_NO_THROW(TransitionCounter(3, {1, 2, 100}));
}

TEST(CountingMisuse, SampleIndexMustIncrease) {
  TransitionCounter c(3, {1, 2});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  EXPECT_FALSE(c.has_sample());
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(0)), std::invalid_argument);
  EXPECT_THROW(c.begin_sample(-1), std::invalid_argument);
  c.begin_sample(5);
  EXPECT_TRUE(c.has_sample());
  try {
    c.begin_sample(5);
    ADD_FAILURE() << "repeated sample accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sample index must increase"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(c.begin_sample(3), std::invalid_argument);
  EXPECT_EQ(c.current_sample(), 5);
  EXPECT_EQ(c.n_samples(), 1u);
  c.begin_sample(6);
  EXPECT_EQ(c.n_origins(0), 1u);
}

TEST(CountingMisuse, SiteOutOfRangeThrowsWithoutSideEffects) {
  TransitionCounter c(3, {1});
  std::vector<double> rec(static_cast<std::size_t>(c.doubles_per_atom()));
  c.clear_history(rec.data());
  c.begin_sample(0);
  c.add_atom_sample(rec.data(), at(1));
  c.begin_sample(1);
  const std::vector<double> rec_before = rec;
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(3)), std::invalid_argument);
  EXPECT_THROW(c.add_atom_sample(rec.data(), at(-1)), std::invalid_argument);
  EXPECT_EQ(rec, rec_before);
  // Read in the middle of sample 1: an atom not yet added (or dropped) at this sample still
  // counts as on its last site, so occupancy includes sample 1 for it.
  EXPECT_EQ(c.occupancy(), (std::vector<std::uint64_t>{0, 2, 0}));
  EXPECT_EQ(c.table(0).total(), 0u);
  // A corrupt record (site beyond nsites, e.g. restart with another sites file) throws too.
  // Slot of sample 0 (max lag 1: slot 0); sites 3 <= s < S = 4 are out of range as well.
  for (double bad : {3.0, 7.0, 2.5, -2.0, 1e300, 9007199254740992.0}) {
    std::vector<double> r2 = rec;
    r2[ionmsm::FullRecord::kHeader + 0] = bad;
    EXPECT_THROW(c.add_atom_sample(r2.data(), at(0)), std::invalid_argument) << bad;
  }
  {
    std::vector<double> r2 = rec;
    r2[ionmsm::FullRecord::kTag] = 0.0;  // header tag: not a record cleared by clear_history
    EXPECT_THROW(c.add_atom_sample(r2.data(), at(0)), std::invalid_argument);
    r2 = rec;
    r2[ionmsm::FullRecord::kLastSeen] = 1.0;  // last sample not before the current one
    EXPECT_THROW(c.add_atom_sample(r2.data(), at(0)), std::invalid_argument);
  }
  EXPECT_EQ(c.table(0).total(), 0u);
  EXPECT_EQ(c.occupancy(), (std::vector<std::uint64_t>{0, 2, 0}));
  c.add_atom_sample(rec.data(), at(0));  // the intact record still counts
  EXPECT_EQ(c.table(0).total(), 1u);
  EXPECT_EQ(c.occupancy(), (std::vector<std::uint64_t>{1, 1, 0}));
}

// ----------------------------------------------------------------------------------- CountTable

TEST(CountTable, DensePackedAndOverflowPathsSortedTogether) {
  const SiteIndex big = (1 << 21) + 5;  // does not fit the 21-bit packed key
  CountTable t(static_cast<std::size_t>(big) + 10);
  t.add(5, 6, {1000, 0, -1000});  // shift overflow
  t.add(5, 6, {1000, 0, -1000}, 2);
  t.add(big, 3, {0, 0, 0});                 // from overflow
  t.add(3, big, {1, 2, 3});                 // to overflow
  t.add(big, big, {0, 0, 0}, 4);            // stay (dense even for a big index)
  t.add(big, big, {0, 0, 1});               // not a stay, overflow
  t.add(1, 2, {63, -64, 0});                // packed, at the edge of the shift range
  t.add(1, 2, {64, 0, 0});                  // just outside: overflow
  t.add(1, 2, {-65, 0, 0});                 // just outside: overflow
  t.add(1, 2, {0, 0, 0}, 7);                // packed
  t.add(2, 2, {0, 0, 0});                   // stay
  t.add(2, 2, {0, -1, 0});                  // packed
  t.add(0, 0, {0, 0, 0}, 0);                // zero counts are no rows
  t.add((1 << 21) - 1, 0, {-64, 63, -64});  // largest packable from
  expect_rows(t.rows(),
              {row(1, 2, {-65, 0, 0}, 1), row(1, 2, {0, 0, 0}, 7), row(1, 2, {63, -64, 0}, 1),
               row(1, 2, {64, 0, 0}, 1), row(2, 2, {0, -1, 0}, 1), row(2, 2, {0, 0, 0}, 1),
               row(3, big, {1, 2, 3}, 1), row(5, 6, {1000, 0, -1000}, 3),
               row((1 << 21) - 1, 0, {-64, 63, -64}, 1), row(big, 3, {0, 0, 0}, 1),
               row(big, big, {0, 0, 0}, 4), row(big, big, {0, 0, 1}, 1)},
              "mixed table");
  EXPECT_EQ(t.total(), 1u + 7 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + 1 + 4 + 1);
  t.clear();
  EXPECT_TRUE(t.rows().empty());
  EXPECT_EQ(t.total(), 0u);
  EXPECT_EQ(t.nsites(), static_cast<std::size_t>(big) + 10);
}

TEST(CountTable, RandomKeysMatchStdMap) {
  // Random keys spanning all three storage paths agree with a plain std::map.
  const std::size_t ns = (std::size_t{1} << 21) + 50;
  CountTable t(ns);
  std::map<CountKey, std::uint64_t> ref;
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> lowsite(0, 20), pct(0, 99), sh(-70, 70);
  std::uniform_int_distribution<SiteIndex> anysite(0, static_cast<SiteIndex>(ns) - 1);
  for (int i = 0; i < 20000; ++i) {
    CountKey k;
    k.from = pct(rng) < 95 ? lowsite(rng) : anysite(rng);
    k.to = pct(rng) < 50 ? k.from : (pct(rng) < 95 ? lowsite(rng) : anysite(rng));
    if (pct(rng) < 50) k.shift = {sh(rng) / 10, sh(rng) / 10, sh(rng) / 10};
    if (pct(rng) < 5) k.shift = {sh(rng), sh(rng), sh(rng)};
    const std::uint64_t n = 1 + static_cast<std::uint64_t>(pct(rng) % 3);
    t.add(k.from, k.to, k.shift, n);
    ref[k] += n;
  }
  expect_rows(t.rows(), rows_of(ref), "random table");
}

TEST(CountTable, RejectsSitesOutOfRange) {
  CountTable t(4);
  EXPECT_THROW(t.add(4, 0, {0, 0, 0}), std::invalid_argument);
  EXPECT_THROW(t.add(0, -1, {0, 0, 0}), std::invalid_argument);
  EXPECT_TRUE(t.rows().empty());
}
