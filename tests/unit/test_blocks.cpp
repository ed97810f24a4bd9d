// Unit tests for count blocks and the block bootstrap helpers (src/ionmsm/blocks.*), and the
// optional /blocks group of the counts file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "ionmsm/blocks.hpp"
#include "ionmsm/counting.hpp"
#include "ionmsm/counts_file.hpp"

using namespace ionmsm;

namespace {

using Key = std::tuple<int, int, int, int, int>;  // from, to, shift

std::map<Key, std::uint64_t> as_map(const std::vector<TransitionCount>& rows) {
  std::map<Key, std::uint64_t> m;
  for (const auto& r : rows) m[{r.from, r.to, r.shift[0], r.shift[1], r.shift[2]}] += r.count;
  return m;
}

void expect_same_block(const CountBlock& a, const CountBlock& b, const std::string& what) {
  EXPECT_EQ(a.index, b.index) << what;
  EXPECT_EQ(a.n_samples, b.n_samples) << what;
  EXPECT_EQ(a.occupancy, b.occupancy) << what;
  EXPECT_EQ(a.n_origins, b.n_origins) << what;
  ASSERT_EQ(a.rows.size(), b.rows.size()) << what;
  for (std::size_t l = 0; l < a.rows.size(); ++l)
    EXPECT_EQ(as_map(a.rows[l]), as_map(b.rows[l])) << what << ", lag index " << l;
}

SiteImage at(SiteIndex s, Image n) {
  SiteImage r;
  r.site = s;
  r.image = n;
  return r;
}

// A random walk of `natoms` atoms over `nsites` sites (ring with lattice shifts), sampled at
// increasing sample indices with gaps. Returns per sample index the atoms' positions.
struct Walk {
  std::vector<std::int64_t> samples;
  std::vector<std::vector<SiteImage>> where;  // [sample][atom]
};

Walk random_walk(std::size_t natoms, int nsites, std::size_t nsamples, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Walk w;
  std::vector<SiteImage> now(natoms);
  for (std::size_t a = 0; a < natoms; ++a) now[a] = at(static_cast<SiteIndex>(a % nsites), {0, 0, 0});
  std::int64_t k = 3;
  for (std::size_t s = 0; s < nsamples; ++s) {
    k += u(rng) < 0.15 ? 2 + static_cast<std::int64_t>(u(rng) * 3) : 1;  // global gaps
    for (auto& p : now) {
      const double r = u(rng);
      if (r < 0.2) {
        const int step = r < 0.1 ? 1 : -1;
        int site = p.site + step;
        if (site == nsites) { site = 0; ++p.image[0]; }
        if (site < 0) { site = nsites - 1; --p.image[0]; }
        p.site = site;
      }
    }
    w.samples.push_back(k);
    w.where.push_back(now);
  }
  return w;
}

// Brute force: block b holds every pair (k, k + l) with floor((k + l) / B) = b, the samples,
// origins and occupancy of its sample indices.
std::map<std::int64_t, CountBlock> brute_force_blocks(const Walk& w, int nsites,
                                                      const std::vector<std::int64_t>& lags,
                                                      std::int64_t block_samples) {
  std::map<std::int64_t, CountBlock> out;
  std::map<std::int64_t, std::size_t> pos;
  for (std::size_t i = 0; i < w.samples.size(); ++i) pos[w.samples[i]] = i;
  std::vector<std::map<Key, std::uint64_t>> dummy;
  std::map<std::int64_t, std::vector<std::map<Key, std::uint64_t>>> rows;
  for (std::size_t i = 0; i < w.samples.size(); ++i) {
    const std::int64_t k = w.samples[i];
    const std::int64_t b = k / block_samples;
    if (!out.count(b)) {
      out[b] = empty_block(static_cast<std::size_t>(nsites), lags.size(), b);
      rows[b].assign(lags.size(), {});
    }
    CountBlock& blk = out[b];
    ++blk.n_samples;
    for (const auto& p : w.where[i]) ++blk.occupancy[static_cast<std::size_t>(p.site)];
    for (std::size_t l = 0; l < lags.size(); ++l) {
      auto it = pos.find(k - lags[l]);
      if (it == pos.end()) continue;
      ++blk.n_origins[l];
      for (std::size_t a = 0; a < w.where[i].size(); ++a) {
        const SiteImage& from = w.where[it->second][a];
        const SiteImage& to = w.where[i][a];
        rows[b][l][{from.site, to.site, to.image[0] - from.image[0], to.image[1] - from.image[1],
                    to.image[2] - from.image[2]}] += 1;
      }
    }
  }
  for (auto& [b, blk] : out)
    for (std::size_t l = 0; l < lags.size(); ++l)
      for (const auto& [key, n] : rows[b][l]) {
        TransitionCount t;
        std::tie(t.from, t.to, t.shift[0], t.shift[1], t.shift[2]) = key;
        t.count = n;
        blk.rows[l].push_back(t);
      }
  return out;
}

// Runs the counter over the walk with a BlockRecorder as fix msm does: before each sample that
// starts a new block, close the open block with the cumulative totals. `split` > 0: at that
// sample the recorder and counter state go through pack/unpack (a restart).
std::vector<CountBlock> recorded_blocks(const Walk& w, int nsites,
                                        const std::vector<std::int64_t>& lags,
                                        std::int64_t block_samples, std::size_t split = 0) {
  TransitionCounter counter(static_cast<std::size_t>(nsites), lags);
  BlockRecorder rec(block_samples, static_cast<std::size_t>(nsites), lags.size());
  const std::size_t natoms = w.where.front().size();
  std::vector<std::vector<double>> hist(natoms,
                                        std::vector<double>(static_cast<std::size_t>(counter.doubles_per_atom())));
  for (auto& h : hist) counter.clear_history(h.data());
  for (std::size_t i = 0; i < w.samples.size(); ++i) {
    if (split > 0 && i == split) {
      const std::vector<std::int64_t> state = rec.pack();
      BlockRecorder again(block_samples, static_cast<std::size_t>(nsites), lags.size());
      again.unpack(state.data(), state.size());
      rec = again;
    }
    const std::int64_t k = w.samples[i];
    if (rec.starts_new_block(k)) rec.close(totals_block(counter));
    rec.open(k);
    counter.begin_sample(k);
    for (std::size_t a = 0; a < natoms; ++a) counter.add_atom_sample(hist[a].data(), w.where[i][a]);
  }
  return rec.blocks(totals_block(counter));
}

}  // namespace

TEST(Blocks, RecorderMatchesBruteForceBlocks) {
  const std::vector<std::int64_t> lags = {1, 2, 5, 9};
  const int nsites = 7;
  const Walk w = random_walk(13, nsites, 400, 42);
  for (std::int64_t bs : {1, 7, 25, 1000}) {
    const auto want = brute_force_blocks(w, nsites, lags, bs);
    const auto got = recorded_blocks(w, nsites, lags, bs);
    ASSERT_EQ(got.size(), want.size()) << "block length " << bs;
    std::size_t i = 0;
    for (const auto& [b, blk] : want)
      expect_same_block(got[i++], blk, "block length " + std::to_string(bs) + ", block " +
                                           std::to_string(b));
  }
}

TEST(Blocks, RestartedRecorderGivesTheSameBlocks) {
  const std::vector<std::int64_t> lags = {1, 3};
  const Walk w = random_walk(5, 4, 200, 7);
  const auto whole = recorded_blocks(w, 4, lags, 16);
  for (std::size_t split : {1u, 50u, 137u}) {
    const auto pieces = recorded_blocks(w, 4, lags, 16, split);
    ASSERT_EQ(pieces.size(), whole.size());
    for (std::size_t b = 0; b < whole.size(); ++b)
      expect_same_block(pieces[b], whole[b], "split at " + std::to_string(split));
  }
}

TEST(Blocks, AccumulateAndSubtractAreInverse) {
  const std::vector<std::int64_t> lags = {1, 2};
  const auto blocks = recorded_blocks(random_walk(6, 5, 120, 3), 5, lags, 10);
  ASSERT_GE(blocks.size(), 3u);
  CountBlock sum = empty_block(5, 2);
  accumulate(sum, blocks[0]);
  accumulate(sum, blocks[1], 3);
  CountBlock back = subtract(sum, blocks[1]);
  back = subtract(back, blocks[1]);
  back = subtract(back, blocks[1]);
  back.index = blocks[0].index;
  expect_same_block(back, blocks[0], "sum minus three times block 1");
  // a later state cannot be subtracted from an earlier one
  EXPECT_THROW(subtract(blocks[0], sum), std::invalid_argument);
  EXPECT_THROW(accumulate(sum, empty_block(4, 2)), std::invalid_argument);
}

TEST(Blocks, AppendedBlocksComeFirstAndMustCoverTheTotals) {
  const std::vector<std::int64_t> lags = {1, 2};
  const auto earlier = recorded_blocks(random_walk(4, 3, 60, 11), 3, lags, 20);
  CountBlock earlier_total = empty_block(3, 2, -1);
  for (const auto& b : earlier) accumulate(earlier_total, b);
  BlockRecorder rec(20, 3, 2);
  rec.set_base(earlier, earlier_total);
  // nothing new: exactly the earlier blocks
  const auto same = rec.blocks(earlier_total);
  ASSERT_EQ(same.size(), earlier.size());
  for (std::size_t b = 0; b < same.size(); ++b) expect_same_block(same[b], earlier[b], "appended");
  // totals that the blocks do not account for are refused
  CountBlock more = earlier_total;
  ++more.n_samples;
  BlockRecorder other(20, 3, 2);
  EXPECT_THROW(other.set_base(earlier, more), std::invalid_argument);
}

TEST(Blocks, MalformedStateIsRefused) {
  BlockRecorder rec(5, 3, 2);
  std::vector<std::int64_t> state = rec.pack();
  BlockRecorder other(6, 3, 2);
  EXPECT_THROW(other.unpack(state.data(), state.size()), std::invalid_argument);
  EXPECT_THROW(rec.unpack(state.data(), state.size() - 1), std::invalid_argument);
  state.push_back(0);
  EXPECT_THROW(rec.unpack(state.data(), state.size()), std::invalid_argument);
  EXPECT_THROW(BlockRecorder(0, 3, 2), std::invalid_argument);
  EXPECT_THROW(rec.close(empty_block(3, 2)), std::invalid_argument);  // nothing open
}

TEST(Blocks, BootstrapWeightsAndWeightedCounts) {
  std::mt19937_64 rng(5);
  for (std::size_t n : {1u, 2u, 17u}) {
    const auto w = bootstrap_weights(n, rng);
    std::uint64_t sum = 0;
    for (auto x : w) sum += x;
    EXPECT_EQ(sum, n);
  }
  const std::vector<std::int64_t> lags = {1, 4};
  const auto blocks = recorded_blocks(random_walk(6, 5, 150, 9), 5, lags, 12);
  // unit weights give the totals; weight 2 on one block adds it once more
  std::vector<std::uint64_t> ones(blocks.size(), 1);
  CountBlock total = empty_block(5, 2);
  for (const auto& b : blocks) accumulate(total, b);
  for (std::size_t l = 0; l < lags.size(); ++l) {
    const LagCounts lc = weighted_lag_counts(blocks, ones, l, lags[l] * 10);
    EXPECT_EQ(lc.lag_steps, lags[l] * 10);
    EXPECT_EQ(lc.n_origins, total.n_origins[l]);
    EXPECT_EQ(as_map(lc.rows), as_map(total.rows[l]));
  }
  std::vector<std::uint64_t> w(blocks.size(), 0);
  w[1] = 2;
  CountBlock twice = empty_block(5, 2);
  accumulate(twice, blocks[1], 2);
  EXPECT_EQ(as_map(weighted_lag_counts(blocks, w, 0, 10).rows), as_map(twice.rows[0]));
  EXPECT_EQ(weighted_occupancy(blocks, w), twice.occupancy);
  EXPECT_THROW(weighted_lag_counts(blocks, {1}, 0, 10), std::invalid_argument);
}

TEST(Blocks, SummaryStatistics) {
  const BootstrapSummary s = summarize_bootstrap({5.0, 1.0, 3.0, NAN, 2.0, 4.0}, 0.5);
  EXPECT_EQ(s.n, 5u);
  EXPECT_EQ(s.n_undefined, 1u);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(2.5));
  EXPECT_DOUBLE_EQ(s.low, 2.0);   // quantile 0.25 of 1..5
  EXPECT_DOUBLE_EQ(s.high, 4.0);  // quantile 0.75
  const BootstrapSummary none = summarize_bootstrap({NAN, INFINITY});
  EXPECT_EQ(none.n, 0u);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_THROW(summarize_bootstrap({1.0}, 1.0), std::invalid_argument);
}

// ------------------------------------------------------------------ counts file /blocks

namespace {

CountsData data_with_blocks(std::int64_t block_steps) {
  const std::vector<std::int64_t> lags = {1, 2};
  const int nsites = 4;
  const Walk w = random_walk(6, nsites, 90, 21);
  TransitionCounter counter(nsites, lags);
  CountsData d;
  d.units = "metal";
  d.timestep = 0.002;
  d.timestep_ps = 0.002;
  d.nevery = 10;
  d.n_atoms = 6;
  d.box_h = Eigen::Matrix3d::Identity() * 10.0;
  for (int s = 0; s < nsites; ++s) d.site_fractional.emplace_back(0.25 * s, 0.5, 0.5);
  const auto blocks = recorded_blocks(w, nsites, lags, block_steps / d.nevery);
  CountBlock total = empty_block(nsites, lags.size());
  for (const auto& b : blocks) accumulate(total, b);
  d.n_samples = total.n_samples;
  d.first_step = w.samples.front() * d.nevery;
  d.last_step = w.samples.back() * d.nevery;
  d.occupancy = total.occupancy;
  for (std::size_t l = 0; l < lags.size(); ++l) {
    LagCounts lc;
    lc.lag_steps = lags[l] * d.nevery;
    lc.n_origins = total.n_origins[l];
    lc.rows = total.rows[l];
    d.lags.push_back(lc);
  }
  d.block_steps = block_steps;
  d.blocks = blocks;
  return d;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "." + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".h5"))
      .string();
}

}  // namespace

TEST(BlocksFile, RoundTrip) {
  const CountsData d = data_with_blocks(200);
  ASSERT_GE(d.blocks.size(), 3u);
  const std::string path = temp_path("ionmsm_blocks_roundtrip");
  write_counts_file(path, d);
  const CountsData r = read_counts_file(path);
  std::filesystem::remove(path);
  EXPECT_EQ(r.block_steps, 200);
  ASSERT_EQ(r.blocks.size(), d.blocks.size());
  for (std::size_t b = 0; b < d.blocks.size(); ++b)
    expect_same_block(r.blocks[b], d.blocks[b], "block " + std::to_string(b));
}

TEST(BlocksFile, BlocksMustSumToTheTotals) {
  CountsData d = data_with_blocks(200);
  d.validate();
  CountsData bad = d;
  ++bad.blocks[1].rows[0].front().count;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad = d;
  bad.blocks.pop_back();
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad = d;
  bad.block_steps = 205;  // not a multiple of nevery
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad = d;
  bad.block_steps = 0;  // blocks without a block length
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  // a file without blocks reads back with none
  CountsData plain = d;
  plain.block_steps = 0;
  plain.blocks.clear();
  const std::string path = temp_path("ionmsm_blocks_plain");
  write_counts_file(path, plain);
  const CountsData r = read_counts_file(path);
  std::filesystem::remove(path);
  EXPECT_EQ(r.block_steps, 0);
  EXPECT_TRUE(r.blocks.empty());
  // appending needs the same block length
  EXPECT_THROW(check_appendable(plain, d), std::invalid_argument);
  EXPECT_NO_THROW(check_appendable(d, d));
}
