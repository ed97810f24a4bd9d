// analysis/model.h5 of `ionmsm analyze` (docs/model-file.md): the per-lag models of the
// LagsPhase, their eigenvectors (core model_eigenvectors), the D tensors of the TransportPhase
// and the selected lag's hop rates (core hop_rate_matrix), written by the core's
// write_model_file.
#include <exception>
#include <string>

#include "analyze.hpp"
#include "ionmsm/model_file.hpp"

namespace ionmsm::cli::analyze {

namespace {

ModelLag model_lag(const Context& c, const LagResult& r, std::vector<std::string>& warnings) {
  ModelLag l;
  l.lag_steps = r.lag_steps;
  l.lag_time = r.lag_time;
  for (std::size_t s : r.model.connectivity.kept) l.kept_sites.push_back(static_cast<std::int64_t>(s));
  l.transition_matrix = r.model.transition_matrix;
  l.stationary = r.model.stationary;
  const auto n = static_cast<Eigen::Index>(l.kept_sites.size());
  try {
    const Spectrum sp = model_eigenvectors(r.model, c.opt.estimator, c.opt.n_eigenvalues);
    l.eigenvalues = sp.eigenvalues;
    l.right_vectors = sp.right_vectors;
    l.left_vectors = sp.left_vectors;
  } catch (const std::exception& e) {
    l.eigenvalues.resize(0);
    l.right_vectors.resize(n, 0);
    l.left_vectors.resize(0, 0);
    warnings.push_back("model.h5: no eigenvectors at lag " + std::to_string(r.lag_steps) + ": " +
                       e.what());
  }
  return l;
}

}  // namespace

ModelData model_data(const Context& c, const Analysis& a, std::vector<std::string>& warnings) {
  ModelData m;
  m.source = c.opt.input;
  m.estimator = c.opt.estimator;
  m.length_unit = c.units.length;
  m.time_unit = c.units.time;
  m.nsites = static_cast<std::int64_t>(c.data.nsites());
  for (const LagResult& r : a.lags.lags) {
    if (!r.have_model) continue;
    if (r.index == a.selection.index) {
      m.selected_lag_steps = r.lag_steps;
      m.hop_rates = hop_rate_matrix(r.model.transition_matrix, r.lag_time);
    }
    ModelLag l = model_lag(c, r, warnings);
    for (const TransportResult& t : a.transport.lags)
      if (t.index == r.index && t.have) {
        l.has_diffusion = true;
        l.D_tensor = t.diffusion.D_tensor;
      }
    m.lags.push_back(std::move(l));
  }
  return m;
}

}  // namespace ionmsm::cli::analyze
