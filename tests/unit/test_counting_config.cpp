// Unit tests for CountingConfig (counting_config.hpp): the name tables, the multi-tau lag
// rule, and validate(), whose errors name the keyword at fault.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/counting_config.hpp"

using ionmsm::AssignMode;
using ionmsm::CountingConfig;
using ionmsm::HistoryConfig;

namespace {

CountingConfig valid() {
  CountingConfig c;
  c.nevery_steps = 5;
  c.lag_steps = {50, 5, 25};
  c.sites_arg = "sites";
  c.outfile = "counts.h5";
  return c;
}

// validate() throws std::invalid_argument whose message contains `words`
void expect_invalid(const std::function<void(CountingConfig&)>& change, const std::string& words) {
  CountingConfig c = valid();
  change(c);
  try {
    c.validate();
    ADD_FAILURE() << "no error, expected one naming '" << words << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos)
        << "message '" << e.what() << "' does not contain '" << words << "'";
  }
}

}  // namespace

TEST(CountingConfig, NameTablesRoundTrip) {
  for (auto m : {HistoryConfig::Mode::Full, HistoryConfig::Mode::MultiTau}) {
    const HistoryConfig h{m, 4};
    EXPECT_EQ(ionmsm::history_mode_from_name(h.name()), m);
  }
  for (auto a : {AssignMode::Nearest, AssignMode::Core})
    EXPECT_EQ(ionmsm::assign_mode_from_name(ionmsm::assign_mode_name(a)), a);
  for (auto s : {ionmsm::SitesSource::Group, ionmsm::SitesSource::File})
    EXPECT_EQ(ionmsm::sites_source_from_name(ionmsm::sites_source_name(s)), s);
  EXPECT_FALSE(ionmsm::history_mode_from_name("Full").has_value());
  EXPECT_FALSE(ionmsm::assign_mode_from_name("").has_value());
  EXPECT_FALSE(ionmsm::sites_source_from_name("files").has_value());
  EXPECT_EQ(ionmsm::history_mode_choices(), "'full' or 'multitau'");
  EXPECT_EQ(ionmsm::assign_mode_choices(), "'nearest' or 'core'");
  EXPECT_EQ(HistoryConfig::multitau(16).text(), "multitau 16");
  EXPECT_EQ(HistoryConfig::full().text(), "full");
}

TEST(CountingConfig, MultiTauLevelsAgreeWithTheirDefinition) {
  // lag = j * 2^k with 1 <= j <= m, lowest k; checked against a brute-force search
  for (std::int64_t m : {1, 2, 3, 4, 16}) {
    for (std::int64_t lag = 1; lag <= 200; ++lag) {
      int want = -1;
      for (int k = 0; k < 10 && want < 0; ++k)
        for (std::int64_t j = 1; j <= m; ++j)
          if (j * (std::int64_t{1} << k) == lag) want = k;
      EXPECT_EQ(ionmsm::multitau_level(lag, m), want) << "lag " << lag << " m " << m;
    }
  }
  EXPECT_EQ(ionmsm::multitau_neighbours(5, 4), std::make_pair(std::int64_t{4}, std::int64_t{6}));
}

TEST(CountingConfig, ValidConfigPassesAndSortsInLagSamples) {
  CountingConfig c = valid();
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.lag_samples(), (std::vector<std::int64_t>{1, 5, 10}));
  c.history = HistoryConfig::multitau(16);
  c.assign = AssignMode::Core;
  c.core_radius = 0.5;
  c.block_steps = 500;
  c.every_steps = 100;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.assign_text(), "core 0.5");
}

TEST(CountingConfig, ErrorsNameTheKeyword) {
  expect_invalid([](CountingConfig& c) { c.nevery_steps = 0; }, "Nevery");
  expect_invalid([](CountingConfig& c) { c.lag_steps.clear(); }, "lag");
  expect_invalid([](CountingConfig& c) { c.lag_steps = {-5}; }, "lag -5 must be a positive");
  expect_invalid([](CountingConfig& c) { c.lag_steps = {7}; }, "lag 7 is not a multiple of Nevery");
  expect_invalid([](CountingConfig& c) { c.lag_steps = {5, 10, 5}; }, "lag 5 is given twice");
  expect_invalid([](CountingConfig& c) { c.outfile.clear(); }, "file");
  expect_invalid([](CountingConfig& c) { c.sites_arg.clear(); }, "sites group");
  expect_invalid([](CountingConfig& c) { c.every_steps = 7; }, "every 7 is not a multiple");
  expect_invalid([](CountingConfig& c) { c.every_steps = -5; }, "every");
  expect_invalid([](CountingConfig& c) { c.history = HistoryConfig::multitau(0); },
                 "history multitau M must be in [1, 1048576], got 0");
  expect_invalid([](CountingConfig& c) { c.history = HistoryConfig::multitau(4); },
                 "lag 25 (5 samples) cannot be counted exactly with history multitau 4; the "
                 "nearest representable lags are 20 and 30 timesteps");
  expect_invalid([](CountingConfig& c) {
    c.assign = AssignMode::Core;
    c.core_radius = -0.5;
  }, "assign core radius must be > 0, got -0.5");
  expect_invalid([](CountingConfig& c) {
    c.assign = AssignMode::Core;
    c.core_radius = 1.0 / 0.0;
  }, "assign core radius");
  expect_invalid([](CountingConfig& c) { c.core_radius = 0.5; }, "assign nearest");
  expect_invalid([](CountingConfig& c) { c.block_steps = 12; }, "blocks 12 is not a multiple");
  expect_invalid([](CountingConfig& c) { c.block_steps = -10; }, "blocks");
  expect_invalid([](CountingConfig& c) {
    c.append = true;
    c.overwrite = true;
  }, "'append yes' and 'overwrite yes'");
}
