#pragma once
// fix msm's global restart state: the settings its counts depend on (a CountingConfig), the
// sites, the clock and the counts summed over ranks, as one flat buffer of int64 values
// (doubles stored bit for bit). Layout, version 5:
//   [tag, version, Nevery, nlags, lags[nlags] (timesteps), nsites, site_frac[3 nsites],
//    last_sampled, first_sampled, dt, nraw, site_raw[nraw], history_m (0: full),
//    assign core (0/1), core_radius, base_first_step, base_last_step, n_outside, nmom,
//    moments[nmom], nclock, clock[nclock], ncounts, counts[ncounts], block_steps, nblock,
//    block_state[nblock]]
// Version 4 has the same layout; only its clock lacks the end of the dense window
// (TransitionCounter::unpack_clock reads both).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/counting_config.hpp"

namespace ionmsm {

struct RestartState {
  static constexpr std::int64_t kTag = 0x4d534d4e4f49;  ///< "IONMSM"
  static constexpr std::int64_t kVersion = 5;
  static constexpr std::int64_t kOldestVersion = 4;

  std::int64_t version = kVersion;  ///< of the buffer read (written: always kVersion)
  /// The saved settings: nevery_steps, lag_steps, history, assign, core_radius, block_steps
  /// (the others are not saved and keep their defaults).
  CountingConfig config;
  std::vector<double> site_fractional;  ///< 3 per site
  std::int64_t last_sampled = -1, first_sampled = -1;  ///< timesteps (-1: none)
  double dt_used = -1.0;                ///< timestep of the counted samples (-1: none)
  std::vector<double> site_raw;         ///< sites file coordinates as read, + fractional flag
  std::int64_t base_first_step = -1, base_last_step = -1;  ///< appended file's steps
  std::int64_t n_outside = 0;           ///< assign core: atom-samples outside every core
  std::vector<double> moments;          ///< TransitionCounter::pack_moments (summed)
  std::vector<std::int64_t> clock;      ///< TransitionCounter::pack_clock
  std::vector<std::int64_t> counts;     ///< TransitionCounter::pack_counts layout (summed)
  std::vector<std::int64_t> blocks;     ///< BlockRecorder::pack (empty without blocks)

  std::vector<std::int64_t> pack() const;
  /// Reads a buffer of n values. Throws std::invalid_argument (naming the field) for a wrong
  /// tag, an unknown version, a negative length or a buffer that ends early.
  static RestartState unpack(const std::int64_t* data, std::size_t n);
};

/// The first setting the saved counts depend on that differs between the restart file
/// (`saved`) and the fix now, as a message naming the keyword; "" if none (Nevery, lags,
/// history, assign; blocks: see blocks_mismatch).
std::string restart_mismatch(const CountingConfig& saved, const CountingConfig& now);
/// The message for differing block lengths; "" if they agree.
std::string blocks_mismatch(const CountingConfig& saved, const CountingConfig& now);

}  // namespace ionmsm
