// Displacement statistics and the jump network: see transport_statistics.hpp.
#include "ionmsm/transport_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/transport_checks.hpp"

namespace ionmsm {

using namespace detail;

namespace {

Eigen::Vector3d shift_vector(const Image& s) {
  return Eigen::Vector3d(static_cast<double>(s[0]), static_cast<double>(s[1]),
                         static_cast<double>(s[2]));
}

/// Throws std::invalid_argument naming `who` unless `data` can give the statistics of lag
/// `lag_index`.
void check_counts_data(const CountsData& data, std::size_t lag_index, const char* who) {
  if (data.lags.empty()) fail(cat(who, ": the counts data has no lags"));
  if (lag_index >= data.lags.size())
    fail(cat(who, ": lag index ", lag_index, " out of range (the counts data has ",
             data.lags.size(), " lag", data.lags.size() == 1 ? "" : "s", ")"));
  const std::size_t n = data.nsites();
  if (n == 0) fail(cat(who, ": the counts data has no sites"));
  if (!data.box_h.allFinite() || !std::isfinite(data.box_h.determinant()) ||
      data.box_h.determinant() == 0.0)
    fail(cat(who, ": box_h is singular or not finite"));
  if (!data.box_origin.allFinite()) fail(cat(who, ": box_origin is not finite"));
  for (std::size_t i = 0; i < n; ++i)
    if (!data.site_fractional[i].allFinite())
      fail(cat(who, ": site ", i, " has a non-finite fractional coordinate"));
  if (!data.occupancy.empty() && data.occupancy.size() != n)
    fail(cat(who, ": occupancy has ", data.occupancy.size(), " entries for ", n, " sites"));
}

/// The lag's rows with counts (site indices checked), and their outgoing and total counts.
std::vector<const TransitionCount*> counted_rows(TransportStatistics& s, const LagCounts& lag,
                                                 std::size_t lag_index, std::size_t n,
                                                 const char* who) {
  std::vector<const TransitionCount*> rows;
  rows.reserve(lag.rows.size());
  for (std::size_t r = 0; r < lag.rows.size(); ++r) {
    const TransitionCount& t = lag.rows[r];
    if (t.from < 0 || static_cast<std::size_t>(t.from) >= n || t.to < 0 ||
        static_cast<std::size_t>(t.to) >= n)
      fail(cat(who, ": lag ", lag.lag_steps, " row ", r, " has a site index out of range (from ",
               t.from, ", to ", t.to, ", ", n, " sites)"));
    if (t.count == 0) continue;
    s.outgoing_count[static_cast<std::size_t>(t.from)] += t.count;
    s.total_count += t.count;
    rows.push_back(&t);
  }
  if (s.total_count == 0)
    fail(cat(who, ": lag ", lag.lag_steps, " (index ", lag_index, ") has no transition counts"));
  return rows;
}

/// The active set: repeatedly remove sites without outgoing counts into the remaining set.
/// `out` becomes each site's outgoing count into the active set.
std::vector<char> active_set(const std::vector<const TransitionCount*>& rows, std::size_t n,
                             std::vector<std::uint64_t>& out) {
  std::vector<char> active(n, 0);
  std::vector<std::size_t> queue;
  for (std::size_t i = 0; i < n; ++i) {
    active[i] = out[i] > 0;
    if (!active[i]) queue.push_back(i);
  }
  if (!queue.empty()) {
    std::vector<std::size_t> head(n + 1, 0), into(rows.size());
    for (const auto* t : rows) ++head[static_cast<std::size_t>(t->to) + 1];
    for (std::size_t i = 0; i < n; ++i) head[i + 1] += head[i];
    std::vector<std::size_t> fillpos(head.begin(), head.end() - 1);
    for (std::size_t r = 0; r < rows.size(); ++r)
      into[fillpos[static_cast<std::size_t>(rows[r]->to)]++] = r;
    for (std::size_t qi = 0; qi < queue.size(); ++qi) {
      const std::size_t x = queue[qi];
      for (std::size_t e = head[x]; e < head[x + 1]; ++e) {
        const auto y = static_cast<std::size_t>(rows[into[e]]->from);
        if (y == x || !active[y]) continue;
        out[y] -= rows[into[e]]->count;
        if (out[y] == 0) {
          active[y] = 0;
          queue.push_back(y);
        }
      }
    }
  }
  return active;
}

/// Displacement rows inside the active set, sorted by (from, to, shift), and their per-pair
/// moments.
void displacements(TransportStatistics& s, const CountsData& data,
                   const std::vector<const TransitionCount*>& rows,
                   const std::vector<char>& active, const std::vector<std::uint64_t>& out) {
  for (const auto* t : rows) {
    const auto from = static_cast<std::size_t>(t->from), to = static_cast<std::size_t>(t->to);
    if (!active[from] || !active[to]) {
      s.dropped_count += t->count;
      continue;
    }
    DisplacementRow d;
    d.from = t->from;
    d.to = t->to;
    d.shift = t->shift;
    d.count = t->count;
    d.probability = static_cast<double>(t->count) / static_cast<double>(out[from]);
    d.displacement = data.box_h * (data.site_fractional[to] - data.site_fractional[from] +
                                     shift_vector(t->shift));
    s.rows.push_back(d);
  }
  std::stable_sort(s.rows.begin(), s.rows.end(),
                   [](const DisplacementRow& a, const DisplacementRow& b) {
                     if (a.from != b.from) return a.from < b.from;
                     if (a.to != b.to) return a.to < b.to;
                     return a.shift < b.shift;
                   });
  for (std::size_t r = 0; r < s.rows.size();) {
    std::size_t e = r;
    PairDisplacementMoments pm;
    pm.from = s.rows[r].from;
    pm.to = s.rows[r].to;
    while (e < s.rows.size() && s.rows[e].from == pm.from && s.rows[e].to == pm.to) {
      const double c = static_cast<double>(s.rows[e].count);
      pm.count += s.rows[e].count;
      pm.mean += c * s.rows[e].displacement;
      pm.second_moment += c * s.rows[e].displacement * s.rows[e].displacement.transpose();
      ++e;
    }
    const double c = static_cast<double>(pm.count);
    pm.mean /= c;
    pm.second_moment /= c;
    pm.probability =
        static_cast<double>(pm.count) / static_cast<double>(out[static_cast<std::size_t>(pm.from)]);
    s.pairs.push_back(pm);
    r = e;
  }
}

}  // namespace

TransportStatistics build_transport_statistics(const CountsData& data, std::size_t lag_index) {
  const char* who = "build_transport_statistics";
  check_counts_data(data, lag_index, who);
  const std::size_t n = data.nsites();
  const LagCounts& lag = data.lags[lag_index];
  TransportStatistics s;
  s.lag_steps = lag.lag_steps;
  s.box_h = data.box_h;
  s.site_fractional = data.site_fractional;
  s.site_cartesian.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    s.site_cartesian[i] = data.box_origin + data.box_h * data.site_fractional[i];
  s.occupancy_fraction.assign(n, 0.0);
  if (!data.occupancy.empty()) {
    double total = 0.0;
    for (auto o : data.occupancy) total += static_cast<double>(o);
    if (total > 0.0)
      for (std::size_t i = 0; i < n; ++i)
        s.occupancy_fraction[i] = static_cast<double>(data.occupancy[i]) / total;
  }
  s.outgoing_count.assign(n, 0);

  const std::vector<const TransitionCount*> rows = counted_rows(s, lag, lag_index, n, who);
  std::vector<std::uint64_t> out(s.outgoing_count);
  const std::vector<char> active = active_set(rows, n, out);
  s.state_of_site.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    if (active[i]) {
      s.state_of_site[i] = static_cast<std::int32_t>(s.active_sites.size());
      s.active_sites.push_back(static_cast<SiteIndex>(i));
    } else {
      s.excluded_sites.push_back(static_cast<SiteIndex>(i));
    }
  }
  if (s.active_sites.empty())
    fail(cat(who, ": lag ", lag.lag_steps, ": no site has outgoing counts into sites with "
                  "outgoing counts (every walk leaves the counted set)"));
  displacements(s, data, rows, active, out);
  return s;
}

Eigen::SparseMatrix<double> transition_matrix(const TransportStatistics& stats) {
  check_stats(stats, "transition_matrix");
  const auto n = static_cast<Eigen::Index>(stats.nsites());
  Triplets t;
  t.reserve(stats.pairs.size());
  for (const auto& q : stats.pairs) t.emplace_back(q.to, q.from, q.probability);
  Eigen::SparseMatrix<double> m(n, n);
  m.setFromTriplets(t.begin(), t.end());
  m.makeCompressed();
  return m;
}

JumpNetwork build_jump_network(const TransportStatistics& stats, double lag_time) {
  const char* who = "build_jump_network";
  check_stats(stats, who);
  check_tau(lag_time, who);
  const std::size_t n = stats.nsites();
  JumpNetwork net;
  net.lag_steps = stats.lag_steps;
  net.lag_time = lag_time;
  net.site_cartesian = stats.site_cartesian;
  net.occupancy_fraction = stats.occupancy_fraction;
  net.self_image_hop_count.assign(n, 0);
  std::vector<std::uint64_t> out(n, 0);
  for (const auto& q : stats.pairs) out[static_cast<std::size_t>(q.from)] += q.count;
  std::map<std::pair<SiteIndex, SiteIndex>, JumpEdge> edges;
  for (const auto& r : stats.rows) {
    if (r.from == r.to) {
      if (r.shift != Image{0, 0, 0}) net.self_image_hop_count[static_cast<std::size_t>(r.from)] += r.count;
      continue;
    }
    const SiteIndex a = std::min(r.from, r.to), b = std::max(r.from, r.to);
    JumpEdge& e = edges[{a, b}];
    e.site_a = a;
    e.site_b = b;
    const double c = static_cast<double>(r.count);
    if (r.from == a) {
      e.count_ab += r.count;
      e.mean_jump_ab += c * r.displacement;
    } else {
      e.count_ba += r.count;
      e.mean_jump_ab -= c * r.displacement;
    }
  }
  net.edges.reserve(edges.size());
  for (auto& kv : edges) {
    JumpEdge& e = kv.second;
    e.mean_jump_ab /= static_cast<double>(e.count_ab + e.count_ba);
    const auto a = static_cast<std::size_t>(e.site_a), b = static_cast<std::size_t>(e.site_b);
    e.rate_ab = e.count_ab == 0 ? 0.0
                                       : static_cast<double>(e.count_ab) /
                                             static_cast<double>(out[a]) / lag_time;
    e.rate_ba = e.count_ba == 0 ? 0.0
                                       : static_cast<double>(e.count_ba) /
                                             static_cast<double>(out[b]) / lag_time;
    net.edges.push_back(e);
  }
  return net;
}

JumpNetwork build_jump_network(const CountsData& data, double lag_time) {
  if (data.lags.empty()) fail("build_jump_network: the counts data has no lags");
  std::size_t shortest = 0;
  for (std::size_t k = 1; k < data.lags.size(); ++k)
    if (data.lags[k].lag_steps < data.lags[shortest].lag_steps) shortest = k;
  return build_jump_network(build_transport_statistics(data, shortest), lag_time);
}

ProjectionAxes most_informative_axes(const TransportStatistics& stats) {
  check_stats(stats, "most_informative_axes");
  ProjectionAxes pa;
  Eigen::Vector3d s1 = Eigen::Vector3d::Zero(), s2 = Eigen::Vector3d::Zero();
  double w = 0.0;
  for (const auto& r : stats.rows) {
    if (r.from == r.to && r.shift == Image{0, 0, 0}) continue;
    const double c = static_cast<double>(r.count);
    pa.n_jumps += r.count;
    w += c;
    s1 += c * r.displacement;
    s2 += c * r.displacement.cwiseProduct(r.displacement);
  }
  if (pa.n_jumps == 0) return pa;
  const Eigen::Vector3d mean = s1 / w;
  pa.jump_variance = (s2 / w - mean.cwiseProduct(mean)).cwiseMax(0.0);
  std::array<int, 3> order{0, 1, 2};
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
    return pa.jump_variance[x] > pa.jump_variance[y];
  });
  pa.axes = {std::min(order[0], order[1]), std::max(order[0], order[1])};
  return pa;
}

}  // namespace ionmsm
