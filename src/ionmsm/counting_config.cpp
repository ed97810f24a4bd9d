// fix msm settings (counting_config.hpp).
#include "ionmsm/counting_config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ionmsm {

namespace {

// one name table per enum: the spelling of the fix syntax and of the counts file
template <typename E>
struct Named {
  E value;
  const char* name;
};
constexpr Named<HistoryConfig::Mode> kHistoryNames[] = {
    {HistoryConfig::Mode::Full, "full"}, {HistoryConfig::Mode::MultiTau, "multitau"}};
constexpr Named<AssignMode> kAssignNames[] = {{AssignMode::Nearest, "nearest"},
                                              {AssignMode::Core, "core"}};
constexpr Named<SitesSource> kSitesNames[] = {{SitesSource::Group, "group"},
                                              {SitesSource::File, "file"}};

template <typename E, std::size_t N>
const char* name_of(const Named<E> (&table)[N], E value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return "?";
}
// "'a', 'b' or 'c'"
template <typename E, std::size_t N>
std::string choices(const Named<E> (&table)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i)
    out += (i == 0 ? "'" : i + 1 < N ? ", '" : " or '") + std::string(table[i].name) + "'";
  return out;
}
template <typename E, std::size_t N>
std::optional<E> value_of(const Named<E> (&table)[N], const std::string& name) {
  for (const auto& e : table)
    if (name == e.name) return e.value;
  return std::nullopt;
}

// the shortest decimal text that reads back as v (messages)
std::string number_text(double v) {
  std::ostringstream s;
  s.precision(std::numeric_limits<double>::max_digits10);
  s << v;
  std::ostringstream g;
  g << v;
  return std::stod(g.str()) == v ? g.str() : s.str();
}

void fail(const std::string& msg) { throw std::invalid_argument(msg); }

void validate_lags(const CountingConfig& c) {
  if (c.lag_steps.empty()) fail("needs at least one lag ('lags L1 ...')");
  for (std::size_t i = 0; i < c.lag_steps.size(); ++i) {
    const std::int64_t lag = c.lag_steps[i];
    if (lag <= 0)
      fail("lag " + std::to_string(lag) + " must be a positive number of timesteps");
    if (lag % c.nevery_steps)
      fail("lag " + std::to_string(lag) + " is not a multiple of Nevery = " +
           std::to_string(c.nevery_steps));
    if (std::find(c.lag_steps.begin(), c.lag_steps.begin() + static_cast<std::ptrdiff_t>(i),
                  lag) != c.lag_steps.begin() + static_cast<std::ptrdiff_t>(i))
      fail("lag " + std::to_string(lag) + " is given twice");
  }
}

void validate_history(const CountingConfig& c) {
  if (c.history.mode != HistoryConfig::Mode::MultiTau) return;
  const std::int64_t m = c.history.m;
  if (m < 1 || m > CountingConfig::kMaxMultiTauM)
    fail("history multitau M must be in [1, " + std::to_string(CountingConfig::kMaxMultiTauM) +
         "], got " + std::to_string(m));
  for (std::int64_t lag : c.sorted_lags()) {
    const std::int64_t l = lag / c.nevery_steps;
    if (multitau_level(l, m) >= 0) continue;
    const auto nb = multitau_neighbours(l, m);
    const std::string head = "lag " + std::to_string(lag) + " (" + std::to_string(l) +
                             " samples) cannot be counted exactly with history multitau " +
                             std::to_string(m) + "; the nearest representable ";
    if (nb.first > 0)
      fail(head + "lags are " + std::to_string(nb.first * c.nevery_steps) + " and " +
           std::to_string(nb.second * c.nevery_steps) + " timesteps");
    fail(head + "lag is " + std::to_string(nb.second * c.nevery_steps) + " timesteps");
  }
}

}  // namespace

const char* HistoryConfig::name() const { return name_of(kHistoryNames, mode); }

std::string HistoryConfig::text() const {
  return mode == Mode::MultiTau ? std::string(name()) + " " + std::to_string(m) : name();
}

std::optional<HistoryConfig::Mode> history_mode_from_name(const std::string& name) {
  return value_of(kHistoryNames, name);
}
std::string history_mode_choices() { return choices(kHistoryNames); }
const char* assign_mode_name(AssignMode mode) { return name_of(kAssignNames, mode); }
std::optional<AssignMode> assign_mode_from_name(const std::string& name) {
  return value_of(kAssignNames, name);
}
std::string assign_mode_choices() { return choices(kAssignNames); }
const char* sites_source_name(SitesSource source) { return name_of(kSitesNames, source); }
std::optional<SitesSource> sites_source_from_name(const std::string& name) {
  return value_of(kSitesNames, name);
}

int multitau_level(std::int64_t lag, std::int64_t m) {
  if (lag < 1 || m < 1) return -1;
  for (int k = 0; k < 62; ++k) {
    const std::int64_t p = std::int64_t{1} << k;
    if (lag % p != 0) return -1;
    if (lag / p <= m) return k;
  }
  return -1;
}

std::pair<std::int64_t, std::int64_t> multitau_neighbours(std::int64_t lag, std::int64_t m) {
  std::int64_t below = 0, above = std::numeric_limits<std::int64_t>::max();
  if (m < 1) return {below, above};
  for (int k = 0; k < 62; ++k) {
    const std::int64_t p = std::int64_t{1} << k;
    // j * p < lag with j <= m, largest
    const std::int64_t jlo = std::min(m, (lag - 1) / p);
    if (jlo >= 1) below = std::max(below, jlo * p);
    // j * p > lag with j <= m, smallest
    const std::int64_t jhi = lag / p + 1;
    if (jhi <= m && jhi <= std::numeric_limits<std::int64_t>::max() / p)
      above = std::min(above, jhi * p);
  }
  return {below, above};
}

void CountingConfig::validate() const {
  if (nevery_steps <= 0)
    fail("Nevery must be a positive integer, got " + std::to_string(nevery_steps));
  validate_lags(*this);
  if (outfile.empty()) fail("needs an output file ('file OUT.h5')");
  if (sites_arg.empty())
    fail("sites " + std::string(sites_source_name(sites)) + " needs a name");
  if (every_steps < 0) fail("every Nout must be positive, got " + std::to_string(every_steps));
  if (every_steps % nevery_steps)
    fail("every " + std::to_string(every_steps) + " is not a multiple of Nevery = " +
         std::to_string(nevery_steps));
  validate_history(*this);
  if (assign == AssignMode::Core && !(core_radius > 0.0 && std::isfinite(core_radius)))
    fail("assign core radius must be > 0, got " + number_text(core_radius));
  if (assign == AssignMode::Nearest && core_radius != 0.0)
    fail("assign nearest takes no core radius, got " + number_text(core_radius));
  if (block_steps < 0)
    fail("blocks Nb must be a positive number of timesteps, got " + std::to_string(block_steps));
  if (block_steps % nevery_steps)
    fail("blocks " + std::to_string(block_steps) + " is not a multiple of Nevery = " +
         std::to_string(nevery_steps));
  if (append && overwrite)
    fail("keywords 'append yes' and 'overwrite yes' exclude each other: append adds this run's "
         "counts to the existing file, overwrite replaces it");
}

std::vector<std::int64_t> CountingConfig::sorted_lags() const {
  std::vector<std::int64_t> out = lag_steps;
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::int64_t> CountingConfig::lag_samples() const {
  std::vector<std::int64_t> out;
  for (std::int64_t lag : sorted_lags()) out.push_back(lag / nevery_steps);
  return out;
}

std::string CountingConfig::assign_text() const {
  const std::string name = assign_mode_name(assign);
  return assign == AssignMode::Core ? name + " " + number_text(core_radius) : name;
}

}  // namespace ionmsm
