#!/usr/bin/env bash
# The paper's pipeline (arXiv:2511.20863: AIMD -> MACE fit -> MACE MD -> MSM -> compare with the
# reference), scaled to a CPU, with the Cui 2012 MEAM potential STANDING IN FOR AIMD:
#   1. reference MD with MEAM (Li hops within picoseconds at T), frames every FRAME_EVERY steps;
#   2. labels: energies, forces, stress of each frame (MEAM, rerun) -> extended XYZ
#      (train / valid / held-out test, the test frames later in time than all others);
#   3. a small MACE fit (mace_run_train, float32, one thread), its errors on every set;
#   4. export with mace's create_lammps_model;
#   5. MACE MD of Li13Si4 with fix msm (pair_style mace, plugin built by scripts/setup-mace);
#   6. MEAM MD with the same settings and length;
#   7. ionmsm analyze of both at the same lag, with block-bootstrap error bars;
#   8. comparison.json + comparison.png: fit errors, MD speeds, fix msm's share of the MACE step,
#      jump rates per site pair, D tensors and slowest timescales with error bars.
#
# Usage: examples/mace_pipeline/run.sh [OUT]      (default OUT: out/mace_pipeline)
#   QUICK=1   a check that runs end to end in well under 30 minutes on a loaded 2-core machine
#   default   a longer run (2x1x3 cell, more frames, epochs and MD; hours on one core)
# Every setting can be overridden: NX NY NZ T SEED REF_NEQ REF_STEPS FRAME_EVERY EPOCHS HIDDEN
# MAX_ELL CORRELATION R_MAX BATCH MD_NEQ MD_STEPS NEVERY LAGS LAG BLOCKS BOOTSTRAP.
# Needs scripts/setup-mace first (the MACE venv and pairmaceplugin.so).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${IONMSM_CACHE:-$HOME/.cache/ionmsm}"
OUT="$(mkdir -p "${1:-$ROOT/out/mace_pipeline}" && cd "${1:-$ROOT/out/mace_pipeline}" && pwd)"
LMP="${IONMSM_LMP:-$ROOT/scripts/lmp}"
IONMSM="${IONMSM:-$ROOT/build/ionmsm}"

if [ "${QUICK:-0}" = 1 ]; then
  : "${NX:=1}" "${NY:=1}" "${NZ:=2}" "${REF_STEPS:=6000}" "${FRAME_EVERY:=150}" "${EPOCHS:=6}"
  : "${HIDDEN:=16x0e+16x1o}" "${MAX_ELL:=2}" "${CORRELATION:=2}" "${BATCH:=2}"
  : "${MD_NEQ:=100}" "${MD_STEPS:=500}" "${NEVERY:=5}" "${LAGS:=5 10 20 50}" "${LAG:=50}"
  : "${BLOCKS:=50}"
else
  : "${NX:=2}" "${NY:=1}" "${NZ:=3}" "${REF_STEPS:=40000}" "${FRAME_EVERY:=200}" "${EPOCHS:=60}"
  : "${HIDDEN:=16x0e+16x1o}" "${MAX_ELL:=3}" "${CORRELATION:=3}" "${BATCH:=4}"
  : "${MD_NEQ:=1000}" "${MD_STEPS:=20000}" "${NEVERY:=10}" "${LAGS:=10 20 50 100 200 500 1000 2000}"
  : "${LAG:=500}" "${BLOCKS:=2000}"
fi
: "${T:=800}" "${SEED:=4928}" "${REF_NEQ:=1000}" "${R_MAX:=5.0}"
: "${BOOTSTRAP:=100}"

log() { printf '[mace_pipeline %4d s] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { printf '[mace_pipeline] ERROR: %s\n' "$*" >&2; exit 1; }
t0=$SECONDS

[ -f "$CACHE/mace/.ionmsm-complete" ] && [ -f "$CACHE/mace/env.sh" ] \
  || die "the MACE stack is not set up: run IONMSM_MACE_SOURCES=DIR scripts/setup-mace first"
# shellcheck disable=SC1091
source "$CACHE/mace/env.sh"
PY="$IONMSM_MACE_PYTHON"
[ -x "$IONMSM" ] || die "$IONMSM not built (run scripts/setup)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NICE=(nice -n 10)

declare -A WALL
stage() { # name, then the command
  local name=$1 s=$SECONDS; shift
  "$@"
  WALL[$name]=$((SECONDS - s))
}
lmp_run() { # dir log args...: LAMMPS in dir, output to log.lammps and screen.txt
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && "${NICE[@]}" "$LMP" -in "$HERE/in.md" -log log.lammps -screen screen.txt \
     -var nx "$NX" -var ny "$NY" -var nz "$NZ" -var T "$T" -var seed "$SEED" \
     -var potdir "$ROOT/potentials/LiSi_Cui2012" -var datadir "$ROOT/examples/li13si4" "$@") \
    || { tail -20 "$dir/screen.txt" >&2; die "LAMMPS failed in $dir (log: $dir/log.lammps)"; }
}

log "OUT=$OUT; cell ${NX}x${NY}x${NZ}, T=$T K; reference $REF_STEPS steps (frame every $FRAME_EVERY);"\
" fit $EPOCHS epochs ($HIDDEN, max_ell $MAX_ELL, correlation $CORRELATION, r_max $R_MAX);"\
" MD $MD_STEPS steps each, fix msm every $NEVERY, lags $LAGS, analysis lag $LAG"

# 1. reference MD (MEAM stands in for AIMD)
log "1/8 reference MD with MEAM ($REF_NEQ + $REF_STEPS steps)"
rm -f "$OUT/reference/frames.dump"
stage reference lmp_run "$OUT/reference" -var pot meam -var neq "$REF_NEQ" -var nprod "$REF_STEPS" \
  -var frames "$FRAME_EVERY" -var msm 0 -var thermo 1000

# 2. labels
log "2/8 labelling the frames with MEAM (energy, forces, virial stress)"
label() {
  (cd "$OUT/reference" && rm -f labels.dat labels.dump && "${NICE[@]}" "$LMP" -in "$HERE/in.label" \
     -log log.label -screen none -var nx "$NX" -var ny "$NY" -var nz "$NZ" -var frames "$FRAME_EVERY" \
     -var potdir "$ROOT/potentials/LiSi_Cui2012" -var datadir "$ROOT/examples/li13si4") \
    || die "labelling failed (log: $OUT/reference/log.label)"
  /usr/bin/python3 "$HERE/labels.py" "$OUT/reference"
}
stage label label

# 3. MACE fit
log "3/8 MACE fit: $EPOCHS epochs on one thread"
fit() {
  mkdir -p "$OUT/fit" && cd "$OUT/fit"
  rm -rf checkpoints results logs LiSi*.model*
  "${NICE[@]}" "$PY" -m mace.cli.run_train --name=LiSi --seed="$SEED" --device=cpu \
    --default_dtype=float32 --model=MACE --hidden_irreps="$HIDDEN" --r_max="$R_MAX" \
    --num_interactions=2 --max_ell="$MAX_ELL" --correlation="$CORRELATION" \
    --train_file="$OUT/reference/train.xyz" --valid_file="$OUT/reference/valid.xyz" \
    --test_file="$OUT/reference/test.xyz" --E0s=average \
    --energy_key=REF_energy --forces_key=REF_forces --stress_key=REF_stress \
    --energy_weight=1 --forces_weight=100 --batch_size="$BATCH" --valid_batch_size="$BATCH" \
    --max_num_epochs="$EPOCHS" --lr=0.01 --scheduler_patience=5 --patience=50 \
    --error_table=PerAtomRMSE --num_workers=0 --save_cpu > train.out 2>&1 \
    || { tail -30 train.out >&2; die "mace_run_train failed (log: $OUT/fit/train.out)"; }
  [ -f LiSi.model ] || die "mace_run_train wrote no LiSi.model (log: $OUT/fit/train.out)"
  cd - > /dev/null
}
stage fit fit

# 4. export for pair_style mace
log "4/8 exporting with create_lammps_model"
export_model() {
  (cd "$OUT/fit" && "$PY" -m mace.cli.create_lammps_model LiSi.model > export.out 2>&1) \
    || { tail -20 "$OUT/fit/export.out" >&2; die "create_lammps_model failed"; }
  "$PY" "$HERE/fit_errors.py" "$OUT/fit/LiSi.model" "$OUT/reference/train.xyz" \
    "$OUT/reference/valid.xyz" "$OUT/reference/test.xyz" --out "$OUT/fit/fit_errors.json"
}
stage export export_model

# 5./6. MD with fix msm, MACE and MEAM, same settings and length
common=(-var neq "$MD_NEQ" -var nprod "$MD_STEPS" -var nevery "$NEVERY" -var lags "$LAGS"
        -var blocks "$BLOCKS" -var msm 1 -var frames 0 -var thermo 500)
log "5/8 MACE MD with fix msm ($MD_NEQ + $MD_STEPS steps)"
stage mace_md lmp_run "$OUT/mace" -var pot mace -var model "$OUT/fit/LiSi.model-lammps.pt" "${common[@]}"
log "6/8 MEAM MD with fix msm (same settings)"
stage meam_md lmp_run "$OUT/meam" -var pot meam "${common[@]}"

# 7. analysis
log "7/8 ionmsm analyze (lag $LAG steps, $BOOTSTRAP bootstrap replicates)"
analyze() {
  for run in mace meam; do
    "${NICE[@]}" "$IONMSM" analyze "$OUT/$run/counts.h5" --out "$OUT/$run/analysis" \
      --lag-steps "$LAG" --bootstrap "$BOOTSTRAP" > "$OUT/$run/analyze.out" 2>&1 \
      || { tail -10 "$OUT/$run/analyze.out" >&2; die "ionmsm analyze failed for $run"; }
  done
}
stage analyze analyze

# 8. comparison
log "8/8 comparison"
WALL[total]=$((SECONDS - t0))
{
  printf '{'; sep=""
  for k in "${!WALL[@]}"; do printf '%s"%s": %s' "$sep" "$k" "${WALL[$k]}"; sep=", "; done
  printf '}\n'
} > "$OUT/timings.json"
/usr/bin/python3 "$HERE/compare.py" --mace "$OUT/mace" --meam "$OUT/meam" \
  --fit "$OUT/fit/fit_errors.json" --timings "$OUT/timings.json" \
  --out "$OUT/comparison.json" --plot "$OUT/comparison.png" | tee "$OUT/comparison.txt"
log "done in $((SECONDS - t0)) s: $OUT/comparison.json, $OUT/comparison.png"
