#include "ionmsm/blocks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "ionmsm/text.hpp"

namespace ionmsm {

namespace {

using text::str;

bool key_less(const TransitionCount& a, const TransitionCount& b) {
  if (a.from != b.from) return a.from < b.from;
  if (a.to != b.to) return a.to < b.to;
  return a.shift < b.shift;
}
bool same_key(const TransitionCount& a, const TransitionCount& b) {
  return a.from == b.from && a.to == b.to && a.shift == b.shift;
}

void check_shape(const CountBlock& a, const CountBlock& b, const char* who) {
  if (a.occupancy.size() != b.occupancy.size() || a.n_origins.size() != b.n_origins.size() ||
      a.rows.size() != b.rows.size())
    throw std::invalid_argument(std::string(who) + ": blocks have different shapes (" +
                                str(a.occupancy.size()) + " vs " + str(b.occupancy.size()) +
                                " sites, " + str(a.n_origins.size()) + " vs " +
                                str(b.n_origins.size()) + " lags)");
}

void check_block_shape(const CountBlock& b, std::size_t nsites, std::size_t nlags,
                       const char* who) {
  if (b.occupancy.size() != nsites || b.n_origins.size() != nlags || b.rows.size() != nlags)
    throw std::invalid_argument(std::string(who) + ": a block has " + str(b.occupancy.size()) +
                                " sites and " + str(b.n_origins.size()) + " lags, expected " +
                                str(nsites) + " and " + str(nlags));
}

std::uint64_t checked_mul_add(std::uint64_t acc, std::uint64_t v, std::uint64_t w) {
  if (w != 0 && v > (std::numeric_limits<std::uint64_t>::max() - acc) / w)
    throw std::invalid_argument("block counts overflow 64 bits");
  return acc + v * w;
}

// ---- int64 serialisation of one block: index, n_samples, occupancy[S], origins[L], then per
// lag: nrows, rows x {from, to, sx, sy, sz, count}
void pack_block(const CountBlock& b, std::vector<std::int64_t>& out) {
  out.push_back(b.index);
  out.push_back(static_cast<std::int64_t>(b.n_samples));
  for (auto o : b.occupancy) out.push_back(static_cast<std::int64_t>(o));
  for (auto o : b.n_origins) out.push_back(static_cast<std::int64_t>(o));
  for (const auto& rows : b.rows) {
    out.push_back(static_cast<std::int64_t>(rows.size()));
    for (const auto& r : rows)
      out.insert(out.end(), {r.from, r.to, r.shift[0], r.shift[1], r.shift[2],
                             static_cast<std::int64_t>(r.count)});
  }
}

class Cursor {
 public:
  Cursor(const std::int64_t* p, std::size_t n) : p_(p), n_(n) {}
  std::int64_t next() {
    if (k_ >= n_) throw std::invalid_argument("block state: buffer ends early (" + str(n_) + " values)");
    return p_[k_++];
  }
  std::int64_t next_nonneg(const char* what) {
    const std::int64_t v = next();
    if (v < 0) throw std::invalid_argument(std::string("block state: negative ") + what);
    return v;
  }
  bool done() const { return k_ == n_; }

 private:
  const std::int64_t* p_;
  std::size_t n_, k_ = 0;
};

CountBlock unpack_block(Cursor& c, std::size_t nsites, std::size_t nlags) {
  CountBlock b = empty_block(nsites, nlags);
  b.index = c.next();
  b.n_samples = static_cast<std::uint64_t>(c.next_nonneg("sample count"));
  for (auto& o : b.occupancy) o = static_cast<std::uint64_t>(c.next_nonneg("occupancy"));
  for (auto& o : b.n_origins) o = static_cast<std::uint64_t>(c.next_nonneg("origin count"));
  for (auto& rows : b.rows) {
    const std::int64_t nr = c.next_nonneg("row count");
    rows.reserve(static_cast<std::size_t>(std::min<std::int64_t>(nr, 1 << 20)));
    for (std::int64_t r = 0; r < nr; ++r) {
      TransitionCount t;
      const std::int64_t from = c.next(), to = c.next();
      if (from < 0 || to < 0 || static_cast<std::size_t>(from) >= nsites ||
          static_cast<std::size_t>(to) >= nsites)
        throw std::invalid_argument("block state: site index outside [0, " + str(nsites) + ")");
      t.from = static_cast<SiteIndex>(from);
      t.to = static_cast<SiteIndex>(to);
      for (int a = 0; a < 3; ++a) t.shift[static_cast<std::size_t>(a)] = static_cast<std::int32_t>(c.next());
      t.count = static_cast<std::uint64_t>(c.next_nonneg("count"));
      if (!rows.empty() && !key_less(rows.back(), t))
        throw std::invalid_argument("block state: rows not sorted");
      rows.push_back(t);
    }
  }
  return b;
}

}  // namespace

CountBlock empty_block(std::size_t nsites, std::size_t nlags, std::int64_t index) {
  CountBlock b;
  b.index = index;
  b.occupancy.assign(nsites, 0);
  b.n_origins.assign(nlags, 0);
  b.rows.assign(nlags, {});
  return b;
}

CountBlock totals_block(const CountsData& data) {
  CountBlock b = empty_block(data.nsites(), data.lags.size(), -1);
  b.n_samples = data.n_samples;
  b.occupancy = data.occupancy;
  b.occupancy.resize(data.nsites(), 0);
  for (std::size_t l = 0; l < data.lags.size(); ++l) {
    b.n_origins[l] = data.lags[l].n_origins;
    b.rows[l] = data.lags[l].rows;
  }
  return b;
}

void accumulate(CountBlock& into, const CountBlock& b, std::uint64_t weight) {
  check_shape(into, b, "accumulate");
  if (weight == 0) return;
  into.n_samples = checked_mul_add(into.n_samples, b.n_samples, weight);
  for (std::size_t i = 0; i < b.occupancy.size(); ++i)
    into.occupancy[i] = checked_mul_add(into.occupancy[i], b.occupancy[i], weight);
  for (std::size_t l = 0; l < b.n_origins.size(); ++l)
    into.n_origins[l] = checked_mul_add(into.n_origins[l], b.n_origins[l], weight);
  for (std::size_t l = 0; l < b.rows.size(); ++l) {
    const auto& add = b.rows[l];
    if (add.empty()) continue;
    auto& dst = into.rows[l];
    std::vector<TransitionCount> merged;
    merged.reserve(dst.size() + add.size());
    std::size_t i = 0, j = 0;
    while (i < dst.size() || j < add.size()) {
      if (j == add.size() || (i < dst.size() && key_less(dst[i], add[j]))) {
        merged.push_back(dst[i++]);
      } else if (i == dst.size() || key_less(add[j], dst[i])) {
        TransitionCount t = add[j++];
        t.count = checked_mul_add(0, t.count, weight);
        merged.push_back(t);
      } else {
        TransitionCount t = dst[i++];
        t.count = checked_mul_add(t.count, add[j++].count, weight);
        merged.push_back(t);
      }
    }
    dst.swap(merged);
  }
}

CountBlock subtract(const CountBlock& a, const CountBlock& b) {
  check_shape(a, b, "subtract");
  auto sub = [](std::uint64_t x, std::uint64_t y, const std::string& what) {
    if (y > x)
      throw std::invalid_argument("subtract: " + what + " would become negative (" + str(x) +
                                  " - " + str(y) + ")");
    return x - y;
  };
  CountBlock d = empty_block(a.occupancy.size(), a.n_origins.size(), a.index);
  d.n_samples = sub(a.n_samples, b.n_samples, "samples");
  for (std::size_t i = 0; i < a.occupancy.size(); ++i)
    d.occupancy[i] = sub(a.occupancy[i], b.occupancy[i], "occupancy of site " + str(i));
  for (std::size_t l = 0; l < a.n_origins.size(); ++l)
    d.n_origins[l] = sub(a.n_origins[l], b.n_origins[l], "origins of lag index " + str(l));
  for (std::size_t l = 0; l < a.rows.size(); ++l) {
    const auto& x = a.rows[l];
    const auto& y = b.rows[l];
    std::size_t j = 0;
    for (const auto& r : x) {
      std::uint64_t minus = 0;
      if (j < y.size() && key_less(y[j], r))
        throw std::invalid_argument("subtract: lag index " + str(l) + ": a transition " + str(static_cast<std::uint64_t>(y[j].from)) + " -> " +
                                    str(static_cast<std::uint64_t>(y[j].to)) + " of the earlier state is missing");
      if (j < y.size() && same_key(y[j], r)) minus = y[j++].count;
      const std::uint64_t c = sub(r.count, minus, "a count of lag index " + str(l));
      if (c > 0) {
        TransitionCount t = r;
        t.count = c;
        d.rows[l].push_back(t);
      }
    }
    if (j != y.size())
      throw std::invalid_argument("subtract: lag index " + str(l) +
                                  ": the earlier state has transitions the later one lacks");
  }
  return d;
}

bool is_empty(const CountBlock& b) {
  if (b.n_samples != 0) return false;
  for (auto o : b.occupancy)
    if (o) return false;
  for (auto o : b.n_origins)
    if (o) return false;
  for (const auto& r : b.rows)
    if (!r.empty()) return false;
  return true;
}

// ------------------------------------------------------------------------ BlockRecorder

BlockRecorder::BlockRecorder(std::int64_t block_samples, std::size_t nsites, std::size_t nlags)
    : block_samples_(block_samples), nsites_(nsites), nlags_(nlags) {
  if (block_samples < 1)
    throw std::invalid_argument("block length must be >= 1 sample, got " +
                                std::to_string(block_samples));
  base_ = empty_block(nsites, nlags, -1);
}

void BlockRecorder::open(std::int64_t sample) {
  if (sample < 0) throw std::invalid_argument("BlockRecorder::open: negative sample index");
  if (open_ < 0) open_ = block_of(sample);
}

void BlockRecorder::close(const CountBlock& cumulative) {
  if (open_ < 0) throw std::invalid_argument("BlockRecorder::close: no block is open");
  check_block_shape(cumulative, nsites_, nlags_, "BlockRecorder::close");
  CountBlock d = subtract(cumulative, base_);
  d.index = open_;
  if (!stored_.empty() && stored_.back().index == open_) {
    accumulate(stored_.back(), d);
  } else if (!is_empty(d)) {
    stored_.push_back(std::move(d));
  }
  base_ = cumulative;
  base_.index = -1;
  open_ = -1;
}

std::vector<CountBlock> BlockRecorder::blocks(const CountBlock& cumulative) const {
  check_block_shape(cumulative, nsites_, nlags_, "BlockRecorder::blocks");
  std::vector<CountBlock> out = stored_;
  CountBlock d = subtract(cumulative, base_);
  if (is_empty(d)) return out;
  d.index = open_ >= 0 ? open_ : (out.empty() ? 0 : out.back().index);
  if (!out.empty() && out.back().index == d.index)
    accumulate(out.back(), d);
  else
    out.push_back(std::move(d));
  return out;
}

void BlockRecorder::set_base(const std::vector<CountBlock>& earlier,
                             const CountBlock& earlier_totals) {
  check_block_shape(earlier_totals, nsites_, nlags_, "BlockRecorder::set_base");
  CountBlock sum = empty_block(nsites_, nlags_);
  for (const auto& b : earlier) {
    check_block_shape(b, nsites_, nlags_, "BlockRecorder::set_base");
    accumulate(sum, b);
  }
  // the earlier blocks must account for every earlier count (nothing outside the blocks)
  CountBlock rest = subtract(earlier_totals, sum);
  if (!is_empty(rest))
    throw std::invalid_argument("the earlier blocks do not sum to the earlier totals");
  stored_ = earlier;
  base_ = earlier_totals;
  base_.index = -1;
}

void BlockRecorder::clear_data() {
  stored_.clear();
  base_ = empty_block(nsites_, nlags_, -1);
}

std::vector<std::int64_t> BlockRecorder::pack() const {
  std::vector<std::int64_t> out = {block_samples_, static_cast<std::int64_t>(nsites_),
                                   static_cast<std::int64_t>(nlags_), open_,
                                   static_cast<std::int64_t>(stored_.size())};
  pack_block(base_, out);
  for (const auto& b : stored_) pack_block(b, out);
  return out;
}

void BlockRecorder::unpack(const std::int64_t* data, std::size_t n) {
  Cursor c(data, n);
  const std::int64_t bs = c.next(), ns = c.next(), nl = c.next();
  if (bs != block_samples_ || ns != static_cast<std::int64_t>(nsites_) ||
      nl != static_cast<std::int64_t>(nlags_))
    throw std::invalid_argument(
        "block state: blocks of " + std::to_string(bs) + " samples with " + std::to_string(ns) +
        " sites and " + std::to_string(nl) + " lags, expected " + std::to_string(block_samples_) +
        " samples, " + str(nsites_) + " sites and " + str(nlags_) + " lags");
  const std::int64_t open = c.next();
  const std::int64_t nb = c.next_nonneg("block count");
  CountBlock base = unpack_block(c, nsites_, nlags_);
  std::vector<CountBlock> stored;
  for (std::int64_t b = 0; b < nb; ++b) stored.push_back(unpack_block(c, nsites_, nlags_));
  if (!c.done()) throw std::invalid_argument("block state: trailing values");
  open_ = open < 0 ? -1 : open;
  base_ = std::move(base);
  stored_ = std::move(stored);
}

// ------------------------------------------------------------------------ bootstrap

std::vector<std::uint64_t> bootstrap_weights(std::size_t nblocks, std::mt19937_64& rng) {
  std::vector<std::uint64_t> w(nblocks, 0);
  if (nblocks == 0) return w;
  std::uniform_int_distribution<std::size_t> pick(0, nblocks - 1);
  for (std::size_t i = 0; i < nblocks; ++i) ++w[pick(rng)];
  return w;
}

LagCounts weighted_lag_counts(const std::vector<CountBlock>& blocks,
                              const std::vector<std::uint64_t>& weights, std::size_t lag,
                              std::int64_t lag_steps) {
  if (weights.size() != blocks.size())
    throw std::invalid_argument("weighted_lag_counts: " + str(weights.size()) + " weights for " +
                                str(blocks.size()) + " blocks");
  LagCounts out;
  out.lag_steps = lag_steps;
  std::vector<TransitionCount> all;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    if (weights[b] == 0) continue;
    if (lag >= blocks[b].rows.size())
      throw std::invalid_argument("weighted_lag_counts: lag index " + str(lag) +
                                  " outside the blocks' " + str(blocks[b].rows.size()) + " lags");
    out.n_origins = checked_mul_add(out.n_origins, blocks[b].n_origins[lag], weights[b]);
    for (const auto& r : blocks[b].rows[lag]) {
      TransitionCount t = r;
      t.count = checked_mul_add(0, r.count, weights[b]);
      all.push_back(t);
    }
  }
  std::sort(all.begin(), all.end(), key_less);
  for (const auto& t : all) {
    if (!out.rows.empty() && same_key(out.rows.back(), t))
      out.rows.back().count = checked_mul_add(out.rows.back().count, t.count, 1);
    else
      out.rows.push_back(t);
  }
  return out;
}

std::vector<std::uint64_t> weighted_occupancy(const std::vector<CountBlock>& blocks,
                                              const std::vector<std::uint64_t>& weights) {
  if (weights.size() != blocks.size())
    throw std::invalid_argument("weighted_occupancy: " + str(weights.size()) + " weights for " +
                                str(blocks.size()) + " blocks");
  std::vector<std::uint64_t> occ;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    if (occ.empty()) occ.assign(blocks[b].occupancy.size(), 0);
    if (blocks[b].occupancy.size() != occ.size())
      throw std::invalid_argument("weighted_occupancy: blocks have different numbers of sites");
    for (std::size_t i = 0; i < occ.size(); ++i)
      occ[i] = checked_mul_add(occ[i], blocks[b].occupancy[i], weights[b]);
  }
  return occ;
}

BootstrapSummary summarize_bootstrap(const std::vector<double>& values, double coverage) {
  if (!(coverage > 0.0 && coverage < 1.0))
    throw std::invalid_argument("bootstrap coverage must be in (0, 1), got " +
                                std::to_string(coverage));
  BootstrapSummary s;
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  s.n = v.size();
  s.n_undefined = values.size() - v.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) {
    s.mean = s.std = s.low = s.high = nan;
    return s;
  }
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto i = static_cast<std::size_t>(std::floor(pos));
    const std::size_t j = std::min(i + 1, v.size() - 1);
    return v[i] + (pos - static_cast<double>(i)) * (v[j] - v[i]);
  };
  s.low = quantile(0.5 * (1.0 - coverage));
  s.high = quantile(0.5 * (1.0 + coverage));
  return s;
}

}  // namespace ionmsm
