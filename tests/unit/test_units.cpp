// Unit tests of src/ionmsm/units.hpp: the time unit of every units style, the length names, and
// the report's units follow the time rule.
#include "ionmsm/units.hpp"

#include <gtest/gtest.h>

#include <string>
#include <stdexcept>

using namespace ionmsm;

TEST(Units, TimeUnitInPs) {
  // https://docs.lammps.org/units.html: the time unit of each style
  EXPECT_DOUBLE_EQ(time_unit_in_ps("metal"), 1.0);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("real"), 1e-3);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("electron"), 1e-3);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("si"), 1e12);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("cgs"), 1e12);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("micro"), 1e6);
  EXPECT_DOUBLE_EQ(time_unit_in_ps("nano"), 1e3);
  EXPECT_EQ(time_unit_in_ps("lj"), 0.0);
  try {
    time_unit_in_ps("Metal");
    ADD_FAILURE() << "no exception for an unknown style";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown LAMMPS units style 'Metal'"), std::string::npos);
  }
  EXPECT_THROW(time_unit_in_ps(""), std::invalid_argument);
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
