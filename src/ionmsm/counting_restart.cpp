// fix msm's global restart state (counting_restart.hpp).
#include "ionmsm/counting_restart.hpp"

#include <cstring>
#include <stdexcept>

namespace ionmsm {

namespace {

std::int64_t bits_of(double v) {
  std::int64_t i;
  std::memcpy(&i, &v, sizeof(i));
  return i;
}
double double_of(std::int64_t i) {
  double v;
  std::memcpy(&v, &i, sizeof(v));
  return v;
}

class Writer {
 public:
  void put(std::int64_t v) { out.push_back(v); }
  void put(double v) { out.push_back(bits_of(v)); }
  template <typename T>
  void put_sized(const std::vector<T>& v) {
    put(static_cast<std::int64_t>(v.size()));
    for (const T& x : v) put(x);
  }
  std::vector<std::int64_t> out;
};

// Every read names its field: a buffer that ends early says where.
class Reader {
 public:
  Reader(const std::int64_t* data, std::size_t n) : p_(data), n_(data ? n : 0) {}
  std::int64_t get(const char* field) {
    if (k_ >= n_)
      throw std::invalid_argument("fix msm restart state: the buffer ends before " +
                                  std::string(field) + " (value " + std::to_string(k_) + " of " +
                                  std::to_string(n_) + ")");
    return p_[k_++];
  }
  double get_double(const char* field) { return double_of(get(field)); }
  std::size_t length(const char* field, std::int64_t per_item = 1) {
    const std::int64_t len = get(field);
    const auto room = (n_ - k_) / static_cast<std::uint64_t>(per_item);
    if (len < 0 || static_cast<std::uint64_t>(len) > room)
      throw std::invalid_argument("fix msm restart state: " + std::string(field) + " " +
                                  std::to_string(len) + " does not fit the " +
                                  std::to_string(n_ - k_) + " values left");
    return static_cast<std::size_t>(len * per_item);
  }
  std::vector<std::int64_t> get_ints(std::size_t len) {
    std::vector<std::int64_t> v(p_ + k_, p_ + k_ + len);
    k_ += len;
    return v;
  }
  std::vector<double> get_doubles(std::size_t len) {
    std::vector<double> v;
    for (std::size_t i = 0; i < len; ++i) v.push_back(double_of(p_[k_ + i]));
    k_ += len;
    return v;
  }

 private:
  const std::int64_t* p_;
  std::size_t n_;
  std::size_t k_ = 0;
};

void read_config_head(Reader& r, RestartState& s) {
  s.config.nevery_steps = r.get("Nevery");
  s.config.lag_steps = r.get_ints(r.length("the number of lags"));
  s.site_fractional = r.get_doubles(r.length("the number of sites", 3));
}

void read_history_and_assign(Reader& r, RestartState& s) {
  const std::int64_t m = r.get("history multitau M");
  s.config.history = m > 0 ? HistoryConfig::multitau(m) : HistoryConfig::full();
  const std::int64_t core = r.get("assign core flag");
  if (core != 0 && core != 1)
    throw std::invalid_argument("fix msm restart state: invalid assign core flag " +
                                std::to_string(core));
  s.config.assign = core ? AssignMode::Core : AssignMode::Nearest;
  s.config.core_radius = r.get_double("assign core radius");
}

}  // namespace

std::vector<std::int64_t> RestartState::pack() const {
  Writer w;
  w.put(kTag);
  w.put(kVersion);
  w.put(config.nevery_steps);
  w.put_sized(config.lag_steps);
  w.put(static_cast<std::int64_t>(site_fractional.size() / 3));
  for (double v : site_fractional) w.put(v);
  w.put(last_sampled);
  w.put(first_sampled);
  w.put(dt_used);
  w.put_sized(site_raw);
  w.put(config.history.mode == HistoryConfig::Mode::MultiTau ? config.history.m : std::int64_t{0});
  w.put(std::int64_t{config.assign == AssignMode::Core ? 1 : 0});
  w.put(config.assign == AssignMode::Core ? config.core_radius : 0.0);
  w.put(base_first_step);
  w.put(base_last_step);
  w.put(n_outside);
  w.put_sized(moments);
  w.put_sized(clock);
  w.put_sized(counts);
  w.put(config.block_steps);
  w.put_sized(blocks);
  return std::move(w.out);
}

RestartState RestartState::unpack(const std::int64_t* data, std::size_t n) {
  Reader r(data, n);
  RestartState s;
  if (r.get("the tag") != kTag)
    throw std::invalid_argument("fix msm restart state: the buffer was not written by fix msm");
  s.version = r.get("the version");
  if (s.version < kOldestVersion || s.version > kVersion)
    throw std::invalid_argument("fix msm restart state: version " + std::to_string(s.version) +
                                "; this ionmsm reads versions " + std::to_string(kOldestVersion) +
                                " to " + std::to_string(kVersion) +
                                " (write the restart with the same ionmsm version)");
  read_config_head(r, s);
  s.last_sampled = r.get("the last sampled step");
  s.first_sampled = r.get("the first sampled step");
  s.dt_used = r.get_double("the timestep");
  s.site_raw = r.get_doubles(r.length("the number of sites file values"));
  read_history_and_assign(r, s);
  s.base_first_step = r.get("the appended first step");
  s.base_last_step = r.get("the appended last step");
  s.n_outside = r.get("the outside-core count");
  s.moments = r.get_doubles(r.length("the number of moments"));
  s.clock = r.get_ints(r.length("the clock size"));
  s.counts = r.get_ints(r.length("the counts size"));
  s.config.block_steps = r.get("blocks Nb");
  s.blocks = r.get_ints(r.length("the block state size"));
  return s;
}

std::string restart_mismatch(const CountingConfig& saved, const CountingConfig& now) {
  if (saved.nevery_steps != now.nevery_steps)
    return "Nevery was " + std::to_string(saved.nevery_steps) + " in the restart file but is " +
           std::to_string(now.nevery_steps) + " now; counts would be corrupted";
  if (saved.lag_steps != now.lag_steps) {
    std::string o, n;
    for (auto lag : saved.lag_steps) o += " " + std::to_string(lag);
    for (auto lag : now.lag_steps) n += " " + std::to_string(lag);
    return "lags were" + o + " in the restart file but are" + n +
           " now; counts would be corrupted";
  }
  if (saved.history != now.history)
    return "history was '" + saved.history.text() + "' in the restart file but is '" +
           now.history.text() + "' now; per-atom histories would be corrupted";
  if (saved.assign != now.assign ||
      (now.assign == AssignMode::Core && saved.core_radius != now.core_radius))
    return "assign was '" + saved.assign_text() + "' in the restart file but is '" +
           now.assign_text() + "' now; counts would be corrupted";
  return std::string();
}

std::string blocks_mismatch(const CountingConfig& saved, const CountingConfig& now) {
  if (saved.block_steps == now.block_steps) return std::string();
  auto name = [](std::int64_t b) {
    return b > 0 ? "blocks " + std::to_string(b) : std::string("no blocks");
  };
  return "the restart file has " + name(saved.block_steps) + " but the fix now has " +
         name(now.block_steps) + "; the blocks would not add up to the counts";
}

}  // namespace ionmsm
