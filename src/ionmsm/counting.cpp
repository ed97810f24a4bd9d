// The state both history schemes share (counting_history.hpp) and the TransitionCounter that
// picks one (counting.hpp). Scheme-specific counting: counting_full.cpp, counting_multitau.cpp.
#include "ionmsm/counting.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "ionmsm/counting_full.hpp"
#include "ionmsm/counting_multitau.hpp"

namespace ionmsm {

namespace {

std::int64_t to_i64(std::uint64_t u) {
  std::int64_t v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
std::uint64_t to_u64(std::int64_t v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

bool fits_int32(std::int64_t v) {
  return v >= std::numeric_limits<std::int32_t>::min() &&
         v <= std::numeric_limits<std::int32_t>::max();
}

std::unique_ptr<HistoryCounter> make_history(std::size_t nsites, std::vector<std::int64_t> lags,
                                             const HistoryConfig& history) {
  if (history.mode == HistoryConfig::Mode::MultiTau)
    return std::make_unique<MultiTauCounter>(nsites, std::move(lags), history.m);
  return std::make_unique<FullHistoryCounter>(nsites, std::move(lags));
}

}  // namespace

// ---------------------------------------------------------------------------- TransitionCounter

TransitionCounter::TransitionCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples,
                                     HistoryConfig history)
    : impl_(make_history(nsites, std::move(lag_samples), history)) {}

TransitionCounter::TransitionCounter(const TransitionCounter& o) : impl_(o.impl_->clone()) {}

TransitionCounter& TransitionCounter::operator=(const TransitionCounter& o) {
  if (this != &o) impl_ = o.impl_->clone();
  return *this;
}

// ------------------------------------------------------------------------------ HistoryCounter

HistoryCounter::HistoryCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples) {
  if (nsites == 0)
    throw std::invalid_argument("TransitionCounter: the number of sites must be > 0");
  if (nsites > static_cast<std::size_t>(std::numeric_limits<SiteIndex>::max())) {
    throw std::invalid_argument("TransitionCounter: too many sites (" + std::to_string(nsites) +
                                "); at most " +
                                std::to_string(std::numeric_limits<SiteIndex>::max()));
  }
  if (lag_samples.empty()) throw std::invalid_argument("TransitionCounter: no lags given");
  for (std::size_t i = 0; i < lag_samples.size(); ++i) {
    if (lag_samples[i] < 1) {
      throw std::invalid_argument("TransitionCounter: lags must be >= 1 sample, got " +
                                  std::to_string(lag_samples[i]));
    }
    if (i > 0 && lag_samples[i] <= lag_samples[i - 1]) {
      throw std::invalid_argument("TransitionCounter: lags must be strictly increasing, got " +
                                  std::to_string(lag_samples[i - 1]) + " then " +
                                  std::to_string(lag_samples[i]));
    }
  }
  lags_ = std::move(lag_samples);
  tables_.assign(lags_.size(), CountTable(nsites));
  origins_.assign(lags_.size(), 0);
  origin_ok_.assign(lags_.size(), 0);
  occupancy_.assign(nsites, 0);
  disp_sum_.assign(lags_.size(), Eigen::Vector3d::Zero());
  disp_sq_.assign(lags_.size(), Eigen::Matrix3d::Zero());
}

void HistoryCounter::mark_quiet(double* /*record*/, std::int64_t /*last_sample*/) const {
  throw std::invalid_argument("TransitionCounter::mark_quiet: quiet samples need the full history");
}

const std::vector<int>& HistoryCounter::stored_levels() const {
  static const std::vector<int> none;
  return none;
}

void HistoryCounter::set_site_fractional(const std::vector<Eigen::Vector3d>& frac) {
  if (frac.size() != occupancy_.size()) {
    throw std::invalid_argument("TransitionCounter::set_site_fractional: " +
                                std::to_string(frac.size()) + " coordinates for " +
                                std::to_string(occupancy_.size()) + " sites");
  }
  for (const auto& f : frac)
    if (!f.allFinite())
      throw std::invalid_argument(
          "TransitionCounter::set_site_fractional: non-finite fractional coordinate");
  site_frac_ = frac;
}

void HistoryCounter::add_moment(std::size_t i, SiteIndex from, SiteIndex to,
                                   const Image& shift, double weight) const {
  const Eigen::Vector3d df = site_frac_[static_cast<std::size_t>(to)] -
                             site_frac_[static_cast<std::size_t>(from)] +
                             Eigen::Vector3d(shift[0], shift[1], shift[2]);
  const Eigen::Vector3d d = cell_ * df;
  disp_sum_[i] += weight * d;
  disp_sq_[i] += weight * (d * d.transpose());
}

std::vector<double> HistoryCounter::pack_moments() const {
  settle();
  std::vector<double> out;
  out.reserve(12 * lags_.size());
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    for (int a = 0; a < 3; ++a) out.push_back(disp_sum_[i][a]);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) out.push_back(disp_sq_[i](a, b));
  }
  return out;
}

void HistoryCounter::add_packed_moments(const double* data, std::size_t n) {
  if (n != 12 * lags_.size() || (n > 0 && data == nullptr)) {
    throw std::invalid_argument("TransitionCounter::add_packed_moments: expected " +
                                std::to_string(12 * lags_.size()) + " values, got " +
                                std::to_string(n));
  }
  for (std::size_t i = 0; i < lags_.size(); ++i) {
    const double* p = data + 12 * i;
    for (int a = 0; a < 3; ++a) disp_sum_[i][a] += p[a];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) disp_sq_[i](a, b) += p[3 + 3 * a + b];
  }
}

void HistoryCounter::add_totals(std::uint64_t n_samples,
                                   const std::vector<std::uint64_t>& origins) {
  if (origins.size() != origins_.size()) {
    throw std::invalid_argument("TransitionCounter::add_totals: " + std::to_string(origins.size()) +
                                " origin counts for " + std::to_string(origins_.size()) + " lags");
  }
  n_samples_ += n_samples;
  for (std::size_t i = 0; i < origins.size(); ++i) origins_[i] += origins[i];
}

void HistoryCounter::begin_sample(std::int64_t sample_index) {
  if (sample_index < 0) {
    throw std::invalid_argument("TransitionCounter::begin_sample: sample index must be >= 0, got " +
                                std::to_string(sample_index));
  }
  if (have_current_ && sample_index <= current_) {
    throw std::invalid_argument(
        "TransitionCounter::begin_sample: sample index must increase (got " +
        std::to_string(sample_index) + " after " + std::to_string(current_) + ")");
  }
  advance_clock(sample_index);
  current_ = sample_index;
  have_current_ = true;
  ++n_samples_;
}

void HistoryCounter::sample_refused(const SiteImage& now) const {
  if (!have_current_) {
    throw std::invalid_argument(
        "TransitionCounter::add_atom_sample: begin_sample() has not been called");
  }
  throw std::invalid_argument("TransitionCounter::add_atom_sample: site index " +
                              std::to_string(now.site) + " out of range (" +
                              std::to_string(occupancy_.size()) + " sites)");
}

std::vector<std::int64_t> HistoryCounter::pack_counts() const {
  settle();
  std::vector<std::vector<TransitionCount>> per_lag(tables_.size());
  std::size_t nrows = 0;
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    per_lag[i] = tables_[i].rows();
    nrows += per_lag[i].size();
  }
  std::vector<std::int64_t> out;
  out.reserve(2 + occupancy_.size() + 7 * nrows);
  out.push_back(static_cast<std::int64_t>(occupancy_.size()));
  out.push_back(static_cast<std::int64_t>(nrows));
  for (std::uint64_t o : occupancy_) out.push_back(to_i64(o));
  for (std::size_t i = 0; i < per_lag.size(); ++i) {
    for (const TransitionCount& r : per_lag[i]) {
      out.push_back(static_cast<std::int64_t>(i));
      out.push_back(r.from);
      out.push_back(r.to);
      out.push_back(r.shift[0]);
      out.push_back(r.shift[1]);
      out.push_back(r.shift[2]);
      out.push_back(to_i64(r.count));
    }
  }
  return out;
}

void HistoryCounter::add_packed_counts(const std::int64_t* data, std::size_t n) {
  const char* who = "TransitionCounter::add_packed_counts: ";
  if (n < 2 || data == nullptr) {
    throw std::invalid_argument(std::string(who) + "buffer too short (" + std::to_string(n) +
                                " values)");
  }
  const std::size_t ns = occupancy_.size();
  if (data[0] < 0 || static_cast<std::uint64_t>(data[0]) != ns) {
    throw std::invalid_argument(std::string(who) + "buffer is for " + std::to_string(data[0]) +
                                " sites, this counter has " + std::to_string(ns));
  }
  if (data[1] < 0) {
    throw std::invalid_argument(std::string(who) + "negative row count " + std::to_string(data[1]));
  }
  const std::uint64_t nrows = static_cast<std::uint64_t>(data[1]);
  const std::uint64_t avail = n >= 2 + ns ? static_cast<std::uint64_t>(n - 2 - ns) : 0;
  if (n < 2 + ns || nrows > avail / 7 || avail != 7 * nrows) {
    throw std::invalid_argument(std::string(who) + "buffer size " + std::to_string(n) +
                                " does not match " + std::to_string(ns) + " sites and " +
                                std::to_string(nrows) + " rows");
  }
  const std::int64_t* rows = data + 2 + ns;
  for (std::uint64_t r = 0; r < nrows; ++r) {
    const std::int64_t* row = rows + 7 * r;
    if (row[0] < 0 || static_cast<std::uint64_t>(row[0]) >= lags_.size()) {
      throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) + ": lag index " +
                                  std::to_string(row[0]) + " out of range");
    }
    for (int c = 1; c <= 2; ++c) {
      if (row[c] < 0 || static_cast<std::uint64_t>(row[c]) >= ns) {
        throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) +
                                    ": site index " + std::to_string(row[c]) + " out of range");
      }
    }
    for (int c = 3; c <= 5; ++c) {
      if (!fits_int32(row[c])) {
        throw std::invalid_argument(std::string(who) + "row " + std::to_string(r) + ": shift " +
                                    std::to_string(row[c]) + " out of range");
      }
    }
  }
  // Valid: apply.
  for (std::size_t s = 0; s < ns; ++s) occupancy_[s] += to_u64(data[2 + s]);
  for (std::uint64_t r = 0; r < nrows; ++r) {
    const std::int64_t* row = rows + 7 * r;
    const Image shift{static_cast<std::int32_t>(row[3]), static_cast<std::int32_t>(row[4]),
                      static_cast<std::int32_t>(row[5])};
    tables_[static_cast<std::size_t>(row[0])].add(
        static_cast<SiteIndex>(row[1]), static_cast<SiteIndex>(row[2]), shift, to_u64(row[6]));
  }
}

void HistoryCounter::clear_counts() {
  settle();  // what was counted so far is dropped; open rates count from here on
  for (CountTable& t : tables_) t.clear();
  std::fill(disp_sum_.begin(), disp_sum_.end(), Eigen::Vector3d::Zero());
  std::fill(disp_sq_.begin(), disp_sq_.end(), Eigen::Matrix3d::Zero());
  std::fill(occupancy_.begin(), occupancy_.end(), 0);
}

// [current, have_current, n_samples, origins[L]] then the scheme's tail
std::vector<std::int64_t> HistoryCounter::pack_clock() const {
  std::vector<std::int64_t> out;
  out.reserve(3 + origins_.size() + clock_tail_size() + 1);
  out.push_back(current_);
  out.push_back(have_current_ ? 1 : 0);
  out.push_back(to_i64(n_samples_));
  for (std::uint64_t o : origins_) out.push_back(to_i64(o));
  pack_clock_tail(out);
  return out;
}

void HistoryCounter::unpack_clock(const std::int64_t* data, std::size_t n) {
  const char* who = "TransitionCounter::unpack_clock: ";
  const std::size_t head = 3 + origins_.size();
  if (data == nullptr || n < head || !clock_tail_readable(n - head)) {
    throw std::invalid_argument(std::string(who) + "expected " +
                                std::to_string(head + clock_tail_size()) + " values (for " +
                                std::to_string(lags_.size()) + " lags, longest " +
                                std::to_string(max_lag_samples()) + " samples), got " +
                                std::to_string(n));
  }
  const std::int64_t current = data[0];
  const std::int64_t have = data[1];
  if (have != 0 && have != 1) {
    throw std::invalid_argument(std::string(who) + "invalid have_current flag " +
                                std::to_string(have));
  }
  if (have == 1 ? current < 0 : current != -1) {
    throw std::invalid_argument(std::string(who) + "invalid current sample " +
                                std::to_string(current));
  }
  unpack_clock_tail(data + head, n - head, current, have == 1);
  current_ = current;
  have_current_ = (have == 1);
  n_samples_ = to_u64(data[2]);
  for (std::size_t i = 0; i < origins_.size(); ++i) origins_[i] = to_u64(data[3 + i]);
}

CountBlock totals_block(const TransitionCounter& counter) {
  CountBlock b;
  b.index = -1;
  b.n_samples = counter.n_samples();
  b.occupancy = counter.occupancy();
  for (std::size_t l = 0; l < counter.num_lags(); ++l) {
    b.n_origins.push_back(counter.n_origins(l));
    b.rows.push_back(counter.table(l).rows());
  }
  return b;
}

}  // namespace ionmsm
