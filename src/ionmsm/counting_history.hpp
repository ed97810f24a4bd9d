#pragma once
// The interface of the two per-atom history schemes (FullHistoryCounter in counting_full.hpp,
// MultiTauCounter in counting_multitau.hpp) and the state they share: the count tables, the
// global clock (current sample, samples taken, origins per lag), the occupancy and the
// displacement moments. Users hold a TransitionCounter (counting.hpp), which owns one
// HistoryCounter; semantics of every call are documented there.
#include <Eigen/Dense>
#include <cstdint>
#include <memory>
#include <vector>

#include "ionmsm/counting_config.hpp"
#include "ionmsm/counting_table.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

class HistoryCounter {
 public:
  /// Checks what both schemes need (sites > 0, lags >= 1 strictly increasing); throws
  /// std::invalid_argument.
  HistoryCounter(std::size_t nsites, std::vector<std::int64_t> lag_samples);
  virtual ~HistoryCounter() = default;
  virtual std::unique_ptr<HistoryCounter> clone() const = 0;

  // ---- scheme-specific (defaults: what a scheme without rates or quiet samples does)
  virtual HistoryConfig history() const = 0;
  virtual int doubles_per_atom() const = 0;
  virtual void clear_history(double* record) const = 0;
  virtual void drop_atom(double* /*record*/) {}
  virtual void reset_rates() {}
  virtual void restore_atom(const double* /*record*/) {}
  virtual std::int64_t quiet_until(const double* /*record*/) const { return -1; }
  virtual bool quiet_allowed() const { return false; }
  virtual void mark_quiet(double* record, std::int64_t last_sample) const;
  virtual void settle() const {}
  virtual void set_cell(const Eigen::Matrix3d& h) { cell_ = h; }
  virtual const std::vector<int>& stored_levels() const;

  // ---- shared
  void begin_sample(std::int64_t sample_index);
  void add_atom_sample(double* record, const SiteImage& now) {
    // inline: the only call per atom and sample is the scheme's add()
    if (!have_current_ || now.site < 0 || static_cast<std::size_t>(now.site) >= occupancy_.size())
      sample_refused(now);
    add(record, now);
  }
  std::vector<std::int64_t> pack_clock() const;
  void unpack_clock(const std::int64_t* data, std::size_t n);
  void set_site_fractional(const std::vector<Eigen::Vector3d>& frac);
  bool has_moments() const { return !site_frac_.empty(); }
  std::vector<double> pack_moments() const;
  void add_packed_moments(const double* data, std::size_t n);
  void add_totals(std::uint64_t n_samples, const std::vector<std::uint64_t>& origins);
  std::vector<std::int64_t> pack_counts() const;
  void add_packed_counts(const std::int64_t* data, std::size_t n);
  void clear_counts();

  int lag_level(std::size_t i) const { return lag_level_[i]; }
  std::int64_t image_radix() const { return radix_; }
  std::size_t nsites() const { return occupancy_.size(); }
  const std::vector<std::int64_t>& lags() const { return lags_; }
  std::int64_t max_lag_samples() const { return lags_.back(); }
  std::int64_t current_sample() const { return current_; }
  bool has_sample() const { return have_current_; }
  std::uint64_t n_origins(std::size_t i) const { return origins_[i]; }
  std::uint64_t n_samples() const { return n_samples_; }
  // unsettled: call settle() first
  const CountTable& table_unsettled(std::size_t i) const { return tables_[i]; }
  const std::vector<std::uint64_t>& occupancy_unsettled() const { return occupancy_; }
  const Eigen::Vector3d& displacement_sum_unsettled(std::size_t i) const { return disp_sum_[i]; }
  const Eigen::Matrix3d& displacement_sq_sum_unsettled(std::size_t i) const { return disp_sq_[i]; }

 protected:
  /// The clock moves to `sample_index` (checked, > current_): update origins_, origin_ok_
  /// and the scheme's rings. current_ still holds the previous sample.
  virtual void advance_clock(std::int64_t sample_index) = 0;
  /// Count one atom's pairs at current_ and store its entry (site already range-checked).
  virtual void add(double* record, const SiteImage& now) = 0;
  /// The scheme's part of the clock, after the shared [current, have, n_samples, origins].
  virtual void pack_clock_tail(std::vector<std::int64_t>& out) const = 0;
  virtual std::size_t clock_tail_size() const = 0;
  /// Whether a stored tail of n values can be read (clock_tail_size(), or an older layout).
  virtual bool clock_tail_readable(std::size_t n) const { return n == clock_tail_size(); }
  /// Validates and restores the tail of a clock whose header holds `current` and `have`;
  /// throws std::invalid_argument before changing anything it validates.
  virtual void unpack_clock_tail(const std::int64_t* tail, std::size_t n, std::int64_t current,
                                 bool have) = 0;
  /// Throws the error add_atom_sample() reports (no current sample, or a site out of range).
  [[noreturn]] void sample_refused(const SiteImage& now) const;
  /// Adds weight * delta and weight * delta delta^T of the pair to the moments of lag i.
  void add_moment(std::size_t i, SiteIndex from, SiteIndex to, const Image& shift,
                  double weight = 1.0) const;

  std::vector<std::int64_t> lags_;      // in samples, strictly increasing
  std::vector<int> lag_level_;          // per lag: origins are the sampled multiples of 2^level
  std::int64_t radix_ = 0;              // R of the packed image offsets
  std::vector<char> origin_ok_;         // per lag: origin of the current sample was sampled
  mutable std::vector<CountTable> tables_;
  std::vector<std::uint64_t> origins_;
  mutable std::vector<std::uint64_t> occupancy_;
  std::vector<Eigen::Vector3d> site_frac_;
  Eigen::Matrix3d cell_ = Eigen::Matrix3d::Identity();
  mutable std::vector<Eigen::Vector3d> disp_sum_;
  mutable std::vector<Eigen::Matrix3d> disp_sq_;
  std::int64_t current_ = -1;
  bool have_current_ = false;
  std::uint64_t n_samples_ = 0;
};

}  // namespace ionmsm
