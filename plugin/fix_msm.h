/* -*- c++ -*- ----------------------------------------------------------
   ionmsm: in-situ Markov state model counting for LAMMPS.
   fix msm: assigns the atoms of a group to their nearest site every Nevery steps and
   accumulates sliding-window transition counts for many lag times at once.
   Documentation: docs/fix_msm.rst. All formulas live in the ionmsm core library.
------------------------------------------------------------------------- */

#ifdef FIX_CLASS
// clang-format off
FixStyle(msm,FixMSM);
// clang-format on
#else

#ifndef LMP_FIX_MSM_H
#define LMP_FIX_MSM_H

#include "fix.h"

#include <memory>
#include <string>
#include <vector>

namespace ionmsm {
class TransitionCounter;
class SiteLocator;
class SiteAssigner;
class BlockRecorder;
struct CountsData;
}    // namespace ionmsm

namespace LAMMPS_NS {

class FixMSM : public Fix {
 public:
  FixMSM(class LAMMPS *, int, char **);
  ~FixMSM() override;
  int setmask() override;
  void init() override;
  void setup(int) override;
  void end_of_step() override;
  void post_run() override;

  double memory_usage() override;
  void grow_arrays(int) override;
  void copy_arrays(int, int, int) override;
  void set_arrays(int) override;
  int pack_exchange(int, double *) override;
  int unpack_exchange(int, double *) override;
  int pack_restart(int, double *) override;
  void unpack_restart(int, int) override;
  int size_restart(int) override;
  int maxsize_restart() override;
  void write_restart(FILE *) override;
  void restart(char *) override;

  // interface for compute msm
  int num_sites() const;
  int num_lags() const;
  bigint lag_steps(int ilag) const;
  int find_lag(bigint lag_steps) const;
  bigint num_samples() const;
  /// Counts of all ranks, summed, as rows {lag_index, from, to, sx, sy, sz, count}; valid on
  /// rank 0 only (other ranks get an empty vector). Collective.
  std::vector<bigint> reduced_rows();
  /// Dense counts C[to][from] summed over shifts for one lag, summed over ranks. Collective.
  void reduced_matrix(int ilag, std::vector<double> &out);
  /// Writes the counts file now (collective). A failed final write (end of a run) is an error;
  /// a failed checkpoint (every Nout) is a warning and the next checkpoint tries again.
  void write_counts(bool final = true);
  /// The output file with its directory resolved (one writer per file).
  const std::string &output_path() const { return resolved_outfile; }

 private:
  bigint nevery_steps;
  std::vector<bigint> lags;    // in timesteps
  std::string outfile;
  std::string resolved_outfile;    // outfile, absolute, symbolic links resolved
  bigint nout;                 // write every nout steps (0 = only at end of runs)
  std::string sites_mode, sites_arg, command_line;
  int ndoubles;                // per-atom history record size
  double **hist;               // per-atom history records: row pointers into hist_data
  double *hist_data = nullptr; // one block of nmax x ndoubles (see grow_arrays)
  int hist_rows = 0;
  // Quiet path (nearest assignment, full history): per atom {g_x, g_y, g_z, until}, g the
  // shifted fractional coordinates of its last site image, until the counter's quiet_until
  // (-1: none). While an atom stays within the safe radius of that image before `until`,
  // a sample reads only this row and leaves the record untouched (see sample()). Not
  // migrated or written to restart files: records are brought up to date (mark_quiet) before
  // they are packed, copied for deletion or dropped, and the row is rebuilt at the next event.
  std::vector<double> quiet;
  bool use_quiet = false;
  std::vector<int> in_group;   // sample(): local indices of the group's atoms
  void bring_up_to_date(int i, bigint last_sample_index);
  // index of the latest sample taken (-1: none): between samples, the last sample of every
  // atom on the quiet path
  bigint latest_sample_index() const;
  // doubles between consecutive rows of hist_data: ndoubles rounded up to a 64-byte line
  std::size_t row_stride() const { return (static_cast<std::size_t>(ndoubles) + 7) / 8 * 8; }
  bigint last_sampled;         // last sampled timestep, -1 if none
  double run_sample_seconds = 0.0;   // this run: wall time in sample() (this rank)
  bigint run_samples = 0;            // this run: samples taken
  bigint run_atom_samples[2] = {0, 0};   // this run: group atoms sampled, of them quiet
  int exchanged = -1;          // local index last packed for migration (see copy_arrays)
  bigint first_sampled;
  bigint natoms_group;
  bool counting_started;
  bool drop_outside;           // next sample checks atoms outside the group (see sample())
  double dt_used;                        // timestep of the counted samples (-1 before any)
  std::vector<double> site_raw;          // sites file coordinates as read (+ fractional flag)

  // history full|multitau M, assign nearest|core R, append yes|no
  std::string history_mode;    // "full" or "multitau"
  bigint history_m;
  std::string assign_mode;     // "nearest" or "core"
  double core_radius;
  int assign_ndoubles;         // per-atom doubles before the counter record (core 1, nearest 4)
  bool append;
  bool overwrite = false;      // overwrite yes: an existing counts file may be replaced
  bool restored = false;       // the state came from a restart file (restart())
  bigint appended_samples = -1;    // append yes: samples in the existing file (-1: no file)
  bool output_decided = false; // decide_output() ran (first init)
  std::vector<std::string> unused_restart_ids;   // fix msm states in the restart file, other IDs
  int failed_checkpoints = 0;  // rank 0: checkpoints that failed since the last written one
  std::string last_failure;    // rank 0: the cause of the last failed checkpoint
  bool occupancy_checked = false;   // rank 0: check_early_occupancy ran
  bigint base_first_step, base_last_step;   // appended file's sampled steps (-1 if none)
  bigint n_outside;            // atom-samples outside every core (this rank; rank 0 + base)
  bigint block_steps;          // blocks Nb (timesteps; 0 = no blocks)
  std::unique_ptr<ionmsm::BlockRecorder> recorder;    // blocks (data on rank 0 only)

  std::unique_ptr<ionmsm::TransitionCounter> counter;
  std::unique_ptr<ionmsm::SiteLocator> locator;
  std::unique_ptr<ionmsm::SiteAssigner> assigner;    // exact fast path (nearest mode)
  std::vector<double> site_frac;          // 3 * nsites fractional coordinates
  std::vector<std::string> site_labels;

  void parse_args(int narg, char **arg);
  void load_sites();
  void sites_from_group(int igroup_sites);
  void sites_from_file(const std::string &path);
  void build_locator();
  void update_box();
  void sample();
  void check_output_path();
  void stop_unless_ok_on_rank0(int ok, std::string msg, const std::string &context);
  void fill_config(ionmsm::CountsData &data);
  void fill_counts_data(ionmsm::CountsData &data, const std::vector<bigint> &rows,
                        const std::vector<double> &moments, bigint outside);
  void reduced_extras(std::vector<double> &moments, bigint &outside);
  void check_history_lags();
  void check_core_radius();
  void append_existing();
  void check_one_writer();
  void note_unused_restart_state();
  void decide_output();
  void report_checkpoint(int ok, const std::string &msg);
  void rebuild_quiet_rows();
  void close_block();
};

}    // namespace LAMMPS_NS

#endif
#endif
