// The CSV tables of `ionmsm analyze` (columns: docs/report-schema.md), one function per
// table, each built from the phase results of analyze.hpp. Undefined values are empty fields.
#include <cmath>

#include "analyze.hpp"

namespace ionmsm::cli::analyze {

namespace {

/// diffusion.csv columns after lag_steps and lag_time_ps, before status: D (6 + total),
/// D0 (6 + total), f (3 + trace), Einstein D (3 + total), drift (3), n_active_sites.
constexpr int kDiffusionValueColumns = 7 + 7 + 4 + 4 + 3 + 1;

std::string csv_join(const std::vector<std::string>& fields) {
  std::string s;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) s += ',';
    s += fields[i];
  }
  s += '\n';
  return s;
}

/// Statuses are plain words; keep the CSV unquoted by mapping separators away.
std::string csv_text(const std::string& s) {
  std::string t = s;
  for (char& c : t)
    if (c == ',' || c == '\n' || c == '"') c = ';';
  return t;
}

std::string implied_timescales_csv(const Analysis& a, int n_eigenvalues) {
  std::string s = "lag_steps,lag_time_ps,k,eigenvalue_re,eigenvalue_im,timescale_ps,status\n";
  for (const auto& r : a.lags.lags) {
    const std::size_t k_max =
        std::min<std::size_t>(static_cast<std::size_t>(n_eigenvalues), r.timescales.size());
    for (std::size_t k = 0; k < k_max; ++k) {
      const ImpliedTimescale& t = r.timescales[k];
      s += csv_join({std::to_string(r.lag_steps), format_number(r.lag_time),
                     std::to_string(k + 1), format_number(t.eigenvalue.real()),
                     format_number(t.eigenvalue.imag()), format_number(t.timescale),
                     csv_text(timescale_status_name(t.status))});
    }
  }
  return s;
}

std::string spectrum_csv(const Analysis& a) {
  std::string s = "lag_steps,lag_time_ps,k,eigenvalue_re,eigenvalue_im,modulus,spectrum_status\n";
  for (const auto& r : a.lags.lags) {
    if (!r.have_spectrum) continue;
    for (Eigen::Index k = 0; k < r.spectrum.eigenvalues.size(); ++k) {
      const std::complex<double> v = r.spectrum.eigenvalues(k);
      s += csv_join({std::to_string(r.lag_steps), format_number(r.lag_time),
                     std::to_string(k + 1), format_number(v.real()), format_number(v.imag()),
                     format_number(std::abs(v)),
                     csv_text(spectrum_status_name(r.spectrum.status))});
    }
  }
  return s;
}

std::string ck_csv(const Context& c, const Analysis& a) {
  std::string s = "lag_steps,lag_time_ps,n,n_lag_steps,time_ps,err,n_sites,status\n";
  for (const auto& r : a.ck.records)
    s += csv_join({std::to_string(r.lag_steps), format_number(c.lag_time(r.lag_steps)),
                   std::to_string(r.n), std::to_string(r.lag_steps * r.n),
                   format_number(c.lag_time(r.lag_steps * r.n)), format_number(r.err),
                   std::to_string(r.n_sites), ck_record_status(r)});
  return s;
}

/// The kDiffusionValueColumns values of one lag's transport.
void diffusion_values(std::vector<std::string>& f, const TransportResult& t) {
  const DiffusionTensorResult& r = t.diffusion;
  for (const Eigen::Matrix3d* m : {&r.D_tensor, &r.D0_tensor}) {
    for (auto [i, j] : {std::pair{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}})
      f.push_back(format_number((*m)(i, j)));
    f.push_back(format_number(m->trace() / 3.0));
  }
  for (int a = 0; a < 3; ++a) f.push_back(format_number(r.correlation_factor[a]));
  f.push_back(format_number(r.correlation_factor_total));
  for (int a = 0; a < 3; ++a) f.push_back(format_number(t.einstein.D_axes[a]));
  f.push_back(format_number(t.einstein.D_total));
  for (int a = 0; a < 3; ++a) f.push_back(format_number(r.drift_velocity[a]));
  f.push_back(std::to_string(t.n_active));
}

std::string diffusion_csv(const Analysis& a) {
  std::string s =
      "lag_steps,lag_time_ps,D_xx,D_xy,D_xz,D_yy,D_yz,D_zz,D_total,"
      "D0_xx,D0_xy,D0_xz,D0_yy,D0_yz,D0_zz,D0_total,f_lag_xx,f_lag_yy,f_lag_zz,f_lag_trace,"
      "D_einstein_x,D_einstein_y,D_einstein_z,D_einstein_total,drift_x,drift_y,drift_z,"
      "n_active_sites,status\n";
  for (const auto& t : a.transport.lags) {
    std::vector<std::string> f = {std::to_string(t.lag_steps), format_number(t.lag_time)};
    if (t.have)
      diffusion_values(f, t);
    else
      f.resize(f.size() + kDiffusionValueColumns);
    f.push_back(csv_text(t.status));
    s += csv_join(f);
  }
  return s;
}

std::string msd_csv(const Context& c, const Analysis& a) {
  const MsdPhase& m = a.msd;
  std::string s = "n,time_ps";
  for (MsdMethod method : kMsdMethods)
    for (const char* col : {"xx", "yy", "zz", "total"})
      s += std::string(",") + msd_method_name(method) + "_" + col;
  s += "\n";
  for (std::int64_t k = 0; k < c.opt.msd_steps; ++k) {
    std::vector<std::string> f = {std::to_string(k + 1),
                                  format_number(static_cast<double>(k + 1) * m.tau)};
    const auto kk = static_cast<std::size_t>(k);
    for (const auto& curve : m.curves) {
      if (curve) {
        for (const auto* v : {&curve->msd_xx, &curve->msd_yy, &curve->msd_zz,
                              &curve->msd_total})
          f.push_back(format_number((*v)[kk]));
      } else {
        f.resize(f.size() + 4);
      }
    }
    s += csv_join(f);
  }
  return s;
}

std::string jump_network_csv(const Analysis& a) {
  const MsdPhase& m = a.msd;
  std::string s = "lag_steps,from,to,count,probability,rate_per_ps,jump_x,jump_y,jump_z\n";
  if (!m.network) return s;
  for (const DirectedJump& e : directed_jumps(*m.network, m.tau))
    s += csv_join({std::to_string(m.lag_steps), std::to_string(e.from), std::to_string(e.to),
                   std::to_string(e.count), format_number(e.probability),
                   format_number(e.rate), format_number(e.jump[0]), format_number(e.jump[1]),
                   format_number(e.jump[2])});
  return s;
}

std::string bootstrap_csv(const Analysis& a) {
  const BootstrapResult& boot = a.bootstrap;
  // k: the mode of a timescale, 1-based over every eigenvalue as in report.json's
  // lags[].eigenvalues[].k and implied_timescales.csv (k = 1 is the stationary one)
  std::string s = "lag_steps,lag_time_ps,quantity,k,mean,std,low,high,n,n_undefined\n";
  const std::size_t K = static_cast<std::size_t>(boot.n_timescales);
  for (const auto& bl : boot.lags) {
    for (std::size_t q = 0; q < bl.values.size(); ++q) {
      const BootstrapSummary b = summarize_bootstrap(bl.values[q], kBootstrapCoverage);
      std::string name = q < K ? "t" + std::to_string(q + 2) + "_ps" : kBootstrapTransport[q - K];
      if (name == "f_trace") name = "f_lag_trace";  // D / D0 at this lag, as in diffusion.csv
      s += csv_join({std::to_string(bl.lag_steps), format_number(bl.lag_time), name,
                     q < K ? std::to_string(q + 2) : std::string(),
                     format_number(b.mean), format_number(b.std), format_number(b.low),
                     format_number(b.high), std::to_string(b.n), std::to_string(b.n_undefined)});
    }
  }
  return s;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> csv_tables(const Context& c, const Analysis& a) {
  return {{"implied_timescales.csv", implied_timescales_csv(a, c.opt.n_eigenvalues)},
          {"spectrum.csv", spectrum_csv(a)},
          {"ck_test.csv", ck_csv(c, a)},
          {"diffusion.csv", diffusion_csv(a)},
          {"msd.csv", msd_csv(c, a)},
          {"jump_network.csv", jump_network_csv(a)},
          {"bootstrap.csv", bootstrap_csv(a)}};
}

}  // namespace ionmsm::cli::analyze
