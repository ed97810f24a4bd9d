// The count table of one lag (counting_table.hpp).
#include "ionmsm/counting_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

// Packed key layout (63 bits): from (21) | to (21) | sx+64 (7) | sy+64 (7) | sz+64 (7).
// Adding 64 to each shift keeps the key order equal to the (from, to, shift) order.
constexpr int kSiteBits = 21;
constexpr int kShiftBits = 7;
constexpr std::int64_t kSiteLimit = std::int64_t{1} << kSiteBits;
constexpr std::int32_t kShiftMin = -(1 << (kShiftBits - 1));     // -64
constexpr std::int32_t kShiftMax = (1 << (kShiftBits - 1)) - 1;  // 63
constexpr std::uint64_t kShiftMask = (std::uint64_t{1} << kShiftBits) - 1;
constexpr std::uint64_t kSiteMask = (std::uint64_t{1} << kSiteBits) - 1;

}  // namespace

CountTable::CountTable(std::size_t nsites) : stay_(nsites, 0) {}

bool CountTable::pack(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t& key) {
  if (from < 0 || to < 0 || from >= kSiteLimit || to >= kSiteLimit) return false;
  for (std::int32_t s : shift)
    if (s < kShiftMin || s > kShiftMax) return false;
  key = (static_cast<std::uint64_t>(from) << (kSiteBits + 3 * kShiftBits)) |
        (static_cast<std::uint64_t>(to) << (3 * kShiftBits)) |
        (static_cast<std::uint64_t>(shift[0] - kShiftMin) << (2 * kShiftBits)) |
        (static_cast<std::uint64_t>(shift[1] - kShiftMin) << kShiftBits) |
        static_cast<std::uint64_t>(shift[2] - kShiftMin);
  return true;
}

void CountTable::add(SiteIndex from, SiteIndex to, const Image& shift, std::uint64_t n) {
  const std::size_t ns = stay_.size();
  if (from < 0 || to < 0 || static_cast<std::size_t>(from) >= ns ||
      static_cast<std::size_t>(to) >= ns) {
    throw std::invalid_argument("CountTable::add: site index out of range (from " +
                                std::to_string(from) + ", to " + std::to_string(to) + ", " +
                                std::to_string(ns) + " sites)");
  }
  if (n == 0) return;
  if (from == to && shift[0] == 0 && shift[1] == 0 && shift[2] == 0) {
    stay_[static_cast<std::size_t>(from)] += n;
    return;
  }
  std::uint64_t key = 0;
  if (pack(from, to, shift, key)) {
    bump_packed(key, n);
  } else {
    CountKey k;
    k.from = from;
    k.to = to;
    k.shift = shift;
    overflow_[k] += n;
  }
}

void CountTable::grow_packed() {
  std::vector<PackedSlot> old;
  old.swap(packed_);
  const std::size_t cap = old.empty() ? 64 : 2 * old.size();
  packed_.assign(cap, PackedSlot{kEmptyKey, 0});
  int bits = 0;
  while ((std::size_t{1} << bits) < cap) ++bits;
  packed_shift_ = 64 - bits;
  const std::size_t mask = cap - 1;
  for (const PackedSlot& e : old) {
    if (e.key == kEmptyKey) continue;
    std::size_t h = static_cast<std::size_t>((e.key * 0x9E3779B97F4A7C15ull) >> packed_shift_);
    while (packed_[h].key != kEmptyKey) h = (h + 1) & mask;
    packed_[h] = e;
  }
}

void CountTable::bump_packed(std::uint64_t key, std::uint64_t n) {
  if (2 * (packed_used_ + 1) > packed_.size()) grow_packed();
  const std::size_t mask = packed_.size() - 1;
  std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> packed_shift_);
  for (;;) {
    PackedSlot& e = packed_[h];
    if (e.key == key) {
      e.n += n;
      return;
    }
    if (e.key == kEmptyKey) {
      e.key = key;
      e.n = n;
      ++packed_used_;
      return;
    }
    h = (h + 1) & mask;
  }
}

void CountTable::add_moving(SiteIndex from, SiteIndex to, const Image& shift) {
  std::uint64_t key = 0;
  if (pack(from, to, shift, key)) {
    bump_packed(key, 1);
  } else {
    CountKey k;
    k.from = from;
    k.to = to;
    k.shift = shift;
    ++overflow_[k];
  }
}

void CountTable::unpack(std::uint64_t key, SiteIndex& from, SiteIndex& to, Image& shift) {
  from = static_cast<SiteIndex>((key >> (kSiteBits + 3 * kShiftBits)) & kSiteMask);
  to = static_cast<SiteIndex>((key >> (3 * kShiftBits)) & kSiteMask);
  shift[0] = static_cast<std::int32_t>((key >> (2 * kShiftBits)) & kShiftMask) + kShiftMin;
  shift[1] = static_cast<std::int32_t>((key >> kShiftBits) & kShiftMask) + kShiftMin;
  shift[2] = static_cast<std::int32_t>(key & kShiftMask) + kShiftMin;
}

std::vector<TransitionCount> CountTable::rows() const {
  std::vector<TransitionCount> out;
  out.reserve(packed_used_ + overflow_.size() + stay_.size() / 4);
  for (std::size_t s = 0; s < stay_.size(); ++s) {
    if (stay_[s] == 0) continue;
    TransitionCount r;
    r.from = static_cast<SiteIndex>(s);
    r.to = r.from;
    r.count = stay_[s];
    out.push_back(r);
  }
  for (const PackedSlot& e : packed_) {
    const std::uint64_t key = e.key, n = e.n;
    if (key == kEmptyKey || n == 0) continue;
    TransitionCount r;
    unpack(key, r.from, r.to, r.shift);
    r.count = n;
    out.push_back(r);
  }
  for (const auto& [k, n] : overflow_) {
    if (n == 0) continue;
    TransitionCount r;
    r.from = k.from;
    r.to = k.to;
    r.shift = k.shift;
    r.count = n;
    out.push_back(r);
  }
  // Each (from, to, shift) lives in exactly one of the three containers, so no merging of
  // equal keys is needed; only the order.
  std::sort(out.begin(), out.end(), [](const TransitionCount& a, const TransitionCount& b) {
    if (a.from != b.from) return a.from < b.from;
    if (a.to != b.to) return a.to < b.to;
    return a.shift < b.shift;
  });
  return out;
}

std::uint64_t CountTable::total() const {
  std::uint64_t t = 0;
  for (std::uint64_t n : stay_) t += n;
  for (const PackedSlot& e : packed_)
    if (e.key != kEmptyKey) t += e.n;
  for (const auto& kv : overflow_) t += kv.second;
  return t;
}

void CountTable::clear() {
  std::fill(stay_.begin(), stay_.end(), 0);
  std::fill(packed_.begin(), packed_.end(), PackedSlot{kEmptyKey, 0});
  packed_used_ = 0;
  overflow_.clear();
}

}  // namespace ionmsm
