// Unit tests for fix msm's global restart state (counting_restart.hpp): round trip, the
// v5 layout, reading version 4, and errors for a wrong tag, a wrong version, a truncated
// buffer and a length that does not fit.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counting_restart.hpp"

using ionmsm::RestartState;

namespace {

RestartState example() {
  RestartState s;
  s.config.nevery_steps = 5;
  s.config.lag_steps = {5, 10, 20};
  s.config.history = ionmsm::HistoryConfig::multitau(4);
  s.config.assign = ionmsm::AssignMode::Core;
  s.config.core_radius = 0.7;
  s.config.block_steps = 200;
  s.site_fractional = {0.125, 0.25, 0.375, 0.5, 0.625, 0.875};
  s.last_sampled = 600;
  s.first_sampled = 0;
  s.dt_used = 0.001;
  s.site_raw = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0};
  s.base_first_step = -1;
  s.base_last_step = -1;
  s.n_outside = 17;
  s.moments = {0.1, -0.2, 1e-300};
  s.clock = {120, 1, 121, 3, 4};
  s.counts = {2, 1, 50, 70, 0, 0, 1, 0, 0, 0, 9};
  s.blocks = {3, 2, 1};
  return s;
}

std::int64_t bits(double v) {
  std::int64_t i;
  std::memcpy(&i, &v, sizeof i);
  return i;
}

void expect_throws_with(const std::vector<std::int64_t>& buf, std::size_t n,
                        const std::string& words) {
  try {
    RestartState::unpack(buf.data(), n);
    ADD_FAILURE() << "no error for " << n << " values, expected '" << words << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(RestartState, RoundTrip) {
  const RestartState s = example();
  const std::vector<std::int64_t> buf = s.pack();
  const RestartState r = RestartState::unpack(buf.data(), buf.size());
  EXPECT_EQ(r.version, RestartState::kVersion);
  EXPECT_EQ(r.config.nevery_steps, 5);
  EXPECT_EQ(r.config.lag_steps, s.config.lag_steps);
  EXPECT_EQ(r.config.history, s.config.history);
  EXPECT_EQ(r.config.assign, s.config.assign);
  EXPECT_EQ(r.config.core_radius, 0.7);
  EXPECT_EQ(r.config.block_steps, 200);
  EXPECT_EQ(r.site_fractional, s.site_fractional);
  EXPECT_EQ(r.last_sampled, 600);
  EXPECT_EQ(r.first_sampled, 0);
  EXPECT_EQ(r.dt_used, 0.001);
  EXPECT_EQ(r.site_raw, s.site_raw);
  EXPECT_EQ(r.n_outside, 17);
  EXPECT_EQ(r.moments, s.moments);
  EXPECT_EQ(r.clock, s.clock);
  EXPECT_EQ(r.counts, s.counts);
  EXPECT_EQ(r.blocks, s.blocks);
  EXPECT_EQ(r.pack(), buf);  // the same bytes again
  EXPECT_EQ(ionmsm::restart_mismatch(r.config, s.config), "");
  EXPECT_EQ(ionmsm::blocks_mismatch(r.config, s.config), "");
}

TEST(RestartState, Version5Layout) {
  // the documented order, written out by hand: restart files of earlier builds stay readable
  RestartState s = example();
  s.config.history = ionmsm::HistoryConfig::full();
  s.config.assign = ionmsm::AssignMode::Nearest;
  s.config.core_radius = 0.0;
  s.config.block_steps = 0;
  s.blocks.clear();
  std::vector<std::int64_t> want = {RestartState::kTag, 5, 5, 3, 5, 10, 20, 2};
  for (double v : s.site_fractional) want.push_back(bits(v));
  want.insert(want.end(), {600, 0, bits(0.001), 7});
  for (double v : s.site_raw) want.push_back(bits(v));
  want.insert(want.end(), {0, 0, bits(0.0), -1, -1, 17, 3});
  for (double v : s.moments) want.push_back(bits(v));
  want.push_back(5);
  want.insert(want.end(), s.clock.begin(), s.clock.end());
  want.push_back(11);
  want.insert(want.end(), s.counts.begin(), s.counts.end());
  want.insert(want.end(), {0, 0});
  EXPECT_EQ(s.pack(), want);
}

TEST(RestartState, ReadsVersion4) {
  std::vector<std::int64_t> buf = example().pack();
  buf[1] = 4;
  EXPECT_EQ(RestartState::unpack(buf.data(), buf.size()).version, 4);
}

TEST(RestartState, WrongTagOrVersionThrows) {
  std::vector<std::int64_t> buf = example().pack();
  std::vector<std::int64_t> bad = buf;
  bad[0] = 12345;
  expect_throws_with(bad, bad.size(), "not written by fix msm");
  for (std::int64_t v : {3, 6, -1}) {
    bad = buf;
    bad[1] = v;
    expect_throws_with(bad, bad.size(), "version " + std::to_string(v));
  }
}

TEST(RestartState, TruncatedBufferThrows) {
  const std::vector<std::int64_t> buf = example().pack();
  for (std::size_t n = 0; n < buf.size(); ++n) expect_throws_with(buf, n, "restart state");
  expect_throws_with(buf, 2, "the buffer ends before Nevery");
  EXPECT_THROW(RestartState::unpack(nullptr, 10), std::invalid_argument);
}

TEST(RestartState, BadLengthThrows) {
  std::vector<std::int64_t> buf = example().pack();
  buf[3] = -1;  // number of lags
  expect_throws_with(buf, buf.size(), "the number of lags -1");
  buf = example().pack();
  buf[3] = std::int64_t{1} << 60;
  expect_throws_with(buf, buf.size(), "does not fit");
}

TEST(RestartState, MismatchNamesTheSetting) {
  const RestartState s = example();
  ionmsm::CountingConfig now = s.config;
  now.nevery_steps = 10;
  EXPECT_NE(ionmsm::restart_mismatch(s.config, now).find("Nevery was 5"), std::string::npos);
  now = s.config;
  now.lag_steps = {5, 10};
  EXPECT_NE(ionmsm::restart_mismatch(s.config, now).find("lags were 5 10 20"), std::string::npos);
  now = s.config;
  now.history = ionmsm::HistoryConfig::full();
  EXPECT_NE(ionmsm::restart_mismatch(s.config, now).find("history was 'multitau 4'"),
            std::string::npos);
  now = s.config;
  now.core_radius = 0.6;
  EXPECT_NE(ionmsm::restart_mismatch(s.config, now).find("assign was 'core 0.7'"),
            std::string::npos);
  now = s.config;
  now.block_steps = 0;
  EXPECT_EQ(ionmsm::restart_mismatch(s.config, now), "");
  EXPECT_NE(ionmsm::blocks_mismatch(s.config, now).find("has blocks 200 but the fix now has no "
                                                        "blocks"),
            std::string::npos);
}
