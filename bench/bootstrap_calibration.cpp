// Calibration of the block bootstrap (bench/README.md, "Bootstrap calibration"): many
// independent runs of a random-barrier ring (tests/unit/bootstrap_calibration.hpp) per block
// count and method; prints a Markdown table of the ratio of the bootstrap sd to the spread over
// the runs and of the 95 % interval coverage of the exact D_xx and slowest timescale.
//
//   ionmsm_bootstrap_calibration [--runs N] [--replicates R] [--blocks 5,10,20]
//       [--samples S] [--walkers W] [--bonds p0,p1,...] [--cross n,p_yz] [--lag-index 0|1] [--seed S]
//       [--methods resample,linearized]
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "bootstrap_calibration.hpp"

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) out.push_back(x);
  return out;
}

void row(const char* method, std::size_t nb, const calibration::QuantityCalibration& q,
         const calibration::Calibration& c) {
  std::printf("| %s | %zu | %s | %.5g | %.5g | %.4g | %.4g | **%.2f** | **%.0f %%** | %+.2f | %zu (%zu) |\n",
              method, nb, q.name.c_str(), q.exact, q.mean_point(), q.run_sd(), q.rms_boot_sd(),
              q.sd_ratio(), 100.0 * q.coverage(), q.mean_boot_bias(), c.n_runs, c.n_fallback);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t runs = 200, lag = 1;
  std::int64_t replicates = 200;
  std::vector<std::string> blocks = {"5", "10", "20"}, methods = {"resample", "linearized"};
  calibration::RingModel model;
  calibration::RunShape shape;
  std::int64_t total_samples = 5000;
  std::uint64_t seed0 = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--runs") runs = std::stoul(v);
    else if (a == "--replicates") replicates = std::stoll(v);
    else if (a == "--blocks") blocks = split(v);
    else if (a == "--samples") total_samples = std::stoll(v);
    else if (a == "--walkers") model.n_walkers = std::stoi(v);
    else if (a == "--lag-index") lag = std::stoul(v);
    else if (a == "--cross") {  // ny = nz = n, p_yz
      const auto x = split(v);
      model.ny = model.nz = std::stoi(x.at(0));
      model.p_yz = std::stod(x.at(1));
    } else if (a == "--bonds") {
      model.bond_p.clear();
      for (const auto& x : split(v)) model.bond_p.push_back(std::stod(x));
    }
    else if (a == "--methods") methods = split(v);
    else if (a == "--seed") seed0 = std::stoull(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("lattice %d x %d x %d (p_yz %g), x bonds p =", model.nx(), model.ny, model.nz,
              model.p_yz);
  for (double p : model.bond_p) std::printf(" %g", p);
  std::printf(", %d walkers, %lld samples per run, lag %lld samples, %zu runs, %lld replicates\n\n",
              model.n_walkers, static_cast<long long>(total_samples),
              static_cast<long long>(model.lags[lag]), runs, static_cast<long long>(replicates));
  std::printf("| method | blocks | quantity | exact | mean estimate | sd over runs | rms bootstrap sd "
              "| ratio | 95 %% coverage | (boot mean - estimate) / sd | runs (resampled) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& m : methods) {
    ionmsm::BootstrapOptions o;
    o.n_replicates = replicates;
    o.method = m == "resample" ? ionmsm::BootstrapMethod::Resample
                               : ionmsm::BootstrapMethod::Linearized;
    for (const auto& b : blocks) {
      shape.n_blocks = std::stoul(b);
      shape.block_samples = total_samples / static_cast<std::int64_t>(shape.n_blocks);
      const calibration::Calibration c = calibration::calibrate(model, shape, runs, o, lag, seed0);
      row(m.c_str(), shape.n_blocks, c.D_xx, c);
      row(m.c_str(), shape.n_blocks, c.t2, c);
      std::fflush(stdout);
    }
  }
  return 0;
}
