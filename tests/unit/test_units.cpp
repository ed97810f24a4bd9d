// Unit tests of src/ionmsm/units.hpp: the units-style table agrees with the counts file's time
// conversion (counts_file.hpp) for every style, and the report's units follow the time rule.
#include "ionmsm/units.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ionmsm/counts_file.hpp"

using namespace ionmsm;

TEST(Units, TableAgreesWithTheCountsFileTimeConversion) {
  for (const char* name : {"metal", "real", "electron", "si", "cgs", "micro", "nano", "lj"}) {
    const UnitsStyle* s = find_units_style(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(std::string(s->name), name);
    EXPECT_EQ(s->time_in_ps, time_unit_in_ps(name)) << name;
  }
  EXPECT_EQ(find_units_style("Metal"), nullptr);
  EXPECT_EQ(find_units_style(""), nullptr);
}

TEST(Units, LengthNames) {
  EXPECT_EQ(length_unit_name("metal"), "Angstrom");
  EXPECT_EQ(length_unit_name("real"), "Angstrom");
  EXPECT_EQ(length_unit_name("lj"), "sigma");
  EXPECT_EQ(length_unit_name("si"), "m");
  EXPECT_EQ(length_unit_name("electron"), "Bohr");
  EXPECT_EQ(length_unit_name("unknown"), "length unit of the counts file");
}

TEST(Units, ReportTimeIsPicosecondsOrTimesteps) {
  const ReportUnits metal = report_units("metal", 0.002);
  EXPECT_TRUE(metal.time_is_physical);
  EXPECT_EQ(metal.time, "ps");
  EXPECT_EQ(metal.per_time, "ps");
  EXPECT_EQ(metal.time_per_step, 0.002);
  EXPECT_EQ(metal.length, "Angstrom");
  const ReportUnits lj = report_units("lj", 0.0);
  EXPECT_FALSE(lj.time_is_physical);
  EXPECT_EQ(lj.time, "timesteps");
  EXPECT_EQ(lj.per_time, "timestep");
  EXPECT_EQ(lj.time_per_step, 1.0);
  EXPECT_EQ(lj.length, "sigma");
}
