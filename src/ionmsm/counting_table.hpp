#pragma once
// The count table of one lag: 64-bit counts keyed by (from, to, shift). Filled by the
// counters (counting.hpp); read through rows().
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

struct CountKey {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  bool operator<(const CountKey& o) const {
    if (from != o.from) return from < o.from;
    if (to != o.to) return to < o.to;
    return shift < o.shift;
  }
  bool operator==(const CountKey& o) const {
    return from == o.from && to == o.to && shift == o.shift;
  }
};

/// Sparse 64-bit counts for one lag, keyed by (from, to, shift). Staying on a site with zero
/// shift (by far the most common event) goes to a dense per-site array.
class CountTable {
 public:
  CountTable() = default;
  explicit CountTable(std::size_t nsites);
  void add(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t n = 1);
  /// add() without the range check, for the counting kernel (sites already validated).
  void add_unchecked(SiteIndex from, SiteIndex to, const Image& shift) {
    if (from == to && shift[0] == 0 && shift[1] == 0 && shift[2] == 0) {
      ++stay_[static_cast<std::size_t>(from)];
      return;
    }
    add_moving(from, to, shift);
  }
  /// One stay on site s (no range check).
  void add_stay(SiteIndex s) { ++stay_[static_cast<std::size_t>(s)]; }
  /// n stays on site s (no range check; counts wrap modulo 2^64, so a counter may hold the
  /// "negative" part of a count whose sum over counters is exact).
  void add_stay_n(SiteIndex s, std::uint64_t n) { stay_[static_cast<std::size_t>(s)] += n; }
  /// (from, to, shift) as one 63-bit key; false if it does not fit (sites >= 2^21, shifts
  /// outside [-64, 63]).
  static bool pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key);
  static void unpack(std::uint64_t key, SiteIndex& from, SiteIndex& to, Image& shift);
  /// n counts of a packed key (no range check).
  void add_packed(std::uint64_t key, std::uint64_t n) {
    if (n != 0) bump_packed(key, n);
  }
  /// One count of a pair that is not a stay (no range check).
  void add_moving(SiteIndex from, SiteIndex to, const Image& shift);
  /// Nonzero entries sorted by (from, to, shift).
  std::vector<TransitionCount> rows() const;
  std::uint64_t total() const;
  void clear();
  std::size_t nsites() const { return stay_.size(); }

 private:
  void bump_packed(std::uint64_t key, std::uint64_t n);
  void grow_packed();
  // Open-addressing hash table (linear probing, power-of-two capacity, load <= 1/2) of the
  // packed keys (63 bits, so kEmptyKey never collides with a key).
  struct PackedSlot {
    std::uint64_t key;
    std::uint64_t n;
  };
  static constexpr std::uint64_t kEmptyKey = ~std::uint64_t{0};
  std::vector<std::uint64_t> stay_;
  std::vector<PackedSlot> packed_;
  std::size_t packed_used_ = 0;
  int packed_shift_ = 64;
  std::map<CountKey, std::uint64_t> overflow_;
};

}  // namespace ionmsm
