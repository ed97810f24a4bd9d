/* -*- c++ -*- ----------------------------------------------------------
   ionmsm: compute msm -- exposes what a fix msm accumulated.
   Documentation: docs/compute_msm.rst.
------------------------------------------------------------------------- */

#ifdef COMPUTE_CLASS
// clang-format off
ComputeStyle(msm,ComputeMSM);
// clang-format on
#else

#ifndef LMP_COMPUTE_MSM_H
#define LMP_COMPUTE_MSM_H

#include "compute.h"

#include <string>
#include <vector>

namespace LAMMPS_NS {

class FixMSM;

class ComputeMSM : public Compute {
 public:
  ComputeMSM(class LAMMPS *, int, char **);
  ~ComputeMSM() override;
  void init() override;
  void compute_vector() override;
  void compute_array() override;
  void compute_local() override;
  double memory_usage() override;

 private:
  std::string fix_id;
  bigint lag_steps;
  int ilag;
  int nsites;
  FixMSM *fix;
  double *vec;
  double **carray;
  double **alocal;
  int nmax_local;
  std::vector<double> dense;
  FixMSM *find_fix();
};

}    // namespace LAMMPS_NS

#endif
#endif
