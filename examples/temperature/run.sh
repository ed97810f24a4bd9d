#!/usr/bin/env bash
# Temperature series of Li13Si4 (MEAM, Si held) with fix msm, then an Arrhenius fit of D.
#
# For every temperature: LAMMPS (examples/li13si4/in.li13si4, cell --cell, default 2 1 3 =
# 204 atoms), `ionmsm analyze`, then arrhenius.py fits ln D = ln D_inf - Ea / (k_B T) to the
# D of each report.json (diffusion[].D_tensor_A2_per_ps) and writes a table and a plot.
#
#   examples/temperature/run.sh                                    # 500 600 700 800 K, 20 ps each
#   examples/temperature/run.sh --temps "700 900" --neq 100 --nprod 300 --out /tmp/t   # tiny
#
# Options: --temps "T ..." (default "500 600 700 800"), --neq N (2000), --nprod N (20000),
#          --cell "NX NY NZ" (2 1 3), --nevery N (10), --np RANKS (1), --out DIR
#          (out/temperature), --component xx|yy|zz|total (xx: the channel axis),
#          --lag-steps L (default: the report's default lag).
# Output: DIR/T_<T>/{counts.h5,log.lammps,analysis/}, DIR/arrhenius.csv, DIR/arrhenius.json,
#         DIR/arrhenius.png.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${IONMSM_BUILD_DIR:-$ROOT/build}"
IONMSM="${IONMSM:-$BUILD/ionmsm}"
LMP_WRAPPER="${IONMSM_LMP:-$ROOT/scripts/lmp}"
TEMPS="500 600 700 800"; NEQ=2000; NPROD=20000; CELL="2 1 3"; NEVERY=10; NP=1
OUT="$ROOT/out/temperature"; COMPONENT=xx; LAG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --temps) TEMPS="$2"; shift 2 ;;
    --neq) NEQ="$2"; shift 2 ;;
    --nprod) NPROD="$2"; shift 2 ;;
    --cell) CELL="$2"; shift 2 ;;
    --nevery) NEVERY="$2"; shift 2 ;;
    --np) NP="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --component) COMPONENT="$2"; shift 2 ;;
    --lag-steps) LAG="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "$0: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
read -r NX NY NZ <<< "$CELL"
source "$ROOT/examples/li13si4_point.sh"
li13si4_setup
mkdir -p "$OUT"
t0=$SECONDS
for T in $TEMPS; do
  d="$OUT/T_$T"
  echo "[temperature] $T K: cell $NX x $NY x $NZ, $NEQ + $NPROD steps" >&2
  li13si4_point temperature "$d" "$NX" "$NY" "$NZ" "$T" $((1000 + T))
  echo "[temperature] $T K done ($((SECONDS - t0)) s so far)" >&2
done
if [ "$HAVE_ANALYZE" = 0 ]; then
  echo "[temperature] this ionmsm has no 'analyze' verb yet: counts files written, no fit" >&2
  exit 0
fi
/usr/bin/python3 "$ROOT/examples/temperature/arrhenius.py" --out "$OUT" --temps $TEMPS \
  --component "$COMPONENT" ${LAG:+--lag-steps "$LAG"}
echo "[temperature] done in $((SECONDS - t0)) s" >&2
