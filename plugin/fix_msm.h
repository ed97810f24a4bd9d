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

#include "ionmsm/counting_config.hpp"
#include "ionmsm/counting_restart.hpp"
#include "ionmsm/geometry.hpp"

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
  // per-atom doubles before the counter record (named offsets). assign nearest: the last
  // assignment {site, n_x, n_y, n_z}, a hint that lets SiteAssigner skip the search exactly;
  // assign core: the committed site.
  struct NearestPrefix {
    static constexpr int kSite = 0, kImage = 1, kSize = 4;
  };
  struct CorePrefix {
    static constexpr int kCommitted = 0, kSize = 1;
  };
  // Quiet path (assign nearest, history full): per atom the shifted fractional coordinates g of
  // its last site image and `until`, the counter's quiet_until (-1: none). While an atom stays
  // within the safe radius of that image before `until`, a sample reads only this row and
  // leaves the record untouched (see sample_group()). Not migrated or written to restart
  // files: records are brought up to date (mark_quiet) before they are packed, copied for
  // deletion or dropped, and the row is rebuilt at the next event.
  struct QuietRow {
    double g[3];
    double until;
  };

  ionmsm::CountingConfig config;    // every setting of the fix command (fix_msm_args.cpp)
  std::string command_line;
  std::string resolved_outfile;     // config.outfile, absolute, symbolic links resolved
  int ndoubles;                     // per-atom record size: prefix + counter record
  int assign_ndoubles;              // per-atom doubles before the counter record
  double **hist;                    // per-atom history records: row pointers into hist_data
  double *hist_data = nullptr;      // one block of nmax x ndoubles (see grow_arrays)
  int hist_rows = 0;
  std::vector<QuietRow> quiet;
  bool use_quiet = false;
  std::vector<int> in_group;        // sample(): local indices of the group's atoms
  bigint last_sampled;              // last sampled timestep, -1 if none
  double run_sample_seconds = 0.0;  // this run: wall time in sample() (this rank)
  bigint run_samples = 0;           // this run: samples taken
  bigint run_atom_samples[2] = {0, 0};   // this run: group atoms sampled, of them quiet
  int exchanged = -1;               // local index last packed for migration (see copy_arrays)
  bigint first_sampled;
  bigint natoms_group;
  bool counting_started;
  bool drop_outside;                // next sample checks atoms outside the group (see sample())
  double dt_used;                   // timestep of the counted samples (-1 before any)
  std::vector<double> site_raw;     // sites file coordinates as read (+ fractional flag)
  bool restored = false;            // the state came from a restart file (restart())
  bigint appended_samples = -1;     // append yes: samples in the existing file (-1: no file)
  bool output_decided = false;      // decide_output() ran (first init)
  std::vector<std::string> unused_restart_ids;   // fix msm states in the restart file, other IDs
  int failed_checkpoints = 0;       // rank 0: checkpoints that failed since the last written one
  std::string last_failure;         // rank 0: the cause of the last failed checkpoint
  bool occupancy_checked = false;   // rank 0: check_early_occupancy ran
  bigint base_first_step, base_last_step;   // appended file's sampled steps (-1 if none)
  bigint n_outside;                 // atom-samples outside every core (this rank; rank 0 + base)
  std::unique_ptr<ionmsm::BlockRecorder> recorder;    // blocks (data on rank 0 only)

  std::unique_ptr<ionmsm::TransitionCounter> counter;
  std::unique_ptr<ionmsm::SiteLocator> locator;
  std::unique_ptr<ionmsm::SiteAssigner> assigner;    // exact fast path (nearest mode)
  std::vector<double> site_frac;          // 3 * nsites fractional coordinates
  std::vector<std::string> site_labels;

  // arguments (fix_msm_args.cpp)
  void parse_args(int narg, char **arg);
  int parse_sites(int iarg, int narg, char **arg);
  int parse_lags(int iarg, int narg, char **arg);
  int parse_history(int iarg, int narg, char **arg);
  int parse_assign(int iarg, int narg, char **arg);
  int parse_yes_no(int iarg, int narg, char **arg, bool &value);
  bigint parse_steps(int iarg, int narg, char **arg, const char *keyword, const char *what);
  void check_core_radius();
  // sites (fix_msm_sites.cpp)
  void load_sites();
  void sites_from_group(int igroup_sites);
  void sites_from_file(const std::string &path);
  void build_locator();
  std::vector<Eigen::Vector3d> site_fractional() const;
  // counter (fix_msm.cpp)
  void create_counter();
  void update_box();
  void sample();
  bool sample_due(bigint step);
  bigint begin_sample(bigint step);
  void drop_atoms_outside_group(bigint step, bigint prev_index);
  int list_group_atoms();
  bigint sample_group(int ngroup, bigint step, bigint prev_index);
  void sample_atom(int i, const Eigen::Vector3d &xu, bigint prev_index);
  void end_sample(bigint step, int ngroup, bigint nquiet, double seconds);
  // output (fix_msm_output.cpp)
  void prepare_output();
  void check_output_path();
  void stop_unless_ok_on_rank0(int ok, std::string msg, const std::string &context);
  void fill_config(ionmsm::CountsData &data);
  void fill_counts_data(ionmsm::CountsData &data, const std::vector<bigint> &rows,
                        const std::vector<double> &moments, bigint outside);
  void reduced_extras(std::vector<double> &moments, bigint &outside);
  void append_existing();
  void add_existing_counts(const ionmsm::CountsData &old);
  void check_one_writer();
  void note_unused_restart_state();
  void decide_output();
  void report_checkpoint(int ok, const std::string &msg);
  void warn_early_occupancy(const ionmsm::CountsData &d);
  void close_block();
  // per-atom records and restart (fix_msm_atoms.cpp)
  void bring_up_to_date(int i, bigint last_sample_index);
  // index of the latest sample taken (-1: none): between samples, the last sample of every
  // atom on the quiet path
  bigint latest_sample_index() const;
  // doubles between consecutive rows of hist_data: ndoubles rounded up to a 64-byte line
  std::size_t row_stride() const { return (static_cast<std::size_t>(ndoubles) + 7) / 8 * 8; }
  void rebuild_quiet_rows();
  void set_quiet_row(int i, const ionmsm::SiteImage &last, std::int64_t until);
  static ionmsm::SiteImage last_assignment(const double *h);
  static void store_assignment(double *h, const ionmsm::SiteImage &now);
  ionmsm::RestartState restart_state(const std::vector<bigint> &rows,
                                     const std::vector<double> &moments, bigint outside);
  void restore_counter(const ionmsm::RestartState &s);
};

}    // namespace LAMMPS_NS

#endif
#endif
