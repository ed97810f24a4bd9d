#!/usr/bin/env bash
# Finite-size study along the fast channel axis of Li13Si4 (the paper's Fig. 3b, with MEAM).
#
# Base cell: 2 x 1 x 3 unit cells of examples/li13si4 (204 atoms, 156 Li: the paper's cell;
# x = the a axis = the paper's channel axis). Size factor k replicates it k times along x
# (nx = 2k). For every k: LAMMPS with fix msm (examples/li13si4/in.li13si4), then
# `ionmsm analyze`; finally collect.py reads D_xx from each report.json
# (diffusion[].D_tensor_A2_per_ps) and writes a table and a plot.
#
#   examples/finite_size/run.sh                                   # sizes 1 2 4 8, 20 ps each
#   examples/finite_size/run.sh --sizes "1 2" --neq 100 --nprod 300 --out /tmp/fs   # tiny
#   examples/finite_size/run.sh --nprod 500000 --np 2            # production (hours)
#
# Options: --sizes "K ..." (default "1 2 4 8"), --neq N (2000), --nprod N (20000),
#          --T K (500), --nevery N (10), --np RANKS (1), --out DIR (out/finite_size),
#          --lag-steps L (lag of the D to tabulate; default: the report's default lag).
# Output: DIR/size_K/{counts.h5,log.lammps,analysis/report.json}, DIR/finite_size.csv,
#         DIR/finite_size.txt, DIR/finite_size.png.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${IONMSM_BUILD_DIR:-$ROOT/build}"
IONMSM="${IONMSM:-$BUILD/ionmsm}"
LMP_WRAPPER="${IONMSM_LMP:-$ROOT/scripts/lmp}"
SIZES="1 2 4 8"; NEQ=2000; NPROD=20000; T=500; NEVERY=10; NP=1; OUT="$ROOT/out/finite_size"
LAG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --neq) NEQ="$2"; shift 2 ;;
    --nprod) NPROD="$2"; shift 2 ;;
    --T) T="$2"; shift 2 ;;
    --nevery) NEVERY="$2"; shift 2 ;;
    --np) NP="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --lag-steps) LAG="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "$0: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
source "$ROOT/examples/li13si4_point.sh"
li13si4_setup
mkdir -p "$OUT"
t0=$SECONDS
for k in $SIZES; do
  d="$OUT/size_$k"
  echo "[finite_size] size ${k}x: cell $((2 * k)) x 1 x 3, $((204 * k)) atoms, $NEQ + $NPROD steps at $T K" >&2
  li13si4_point finite_size "$d" $((2 * k)) 1 3 "$T" $((4928 + k))
  echo "[finite_size] size ${k}x done ($((SECONDS - t0)) s so far)" >&2
done
if [ "$HAVE_ANALYZE" = 0 ]; then
  echo "[finite_size] this ionmsm has no 'analyze' verb yet: counts files written, no D table" >&2
  exit 0
fi
/usr/bin/python3 "$ROOT/examples/finite_size/collect.py" --out "$OUT" --sizes $SIZES \
  ${LAG:+--lag-steps "$LAG"}
echo "[finite_size] done in $((SECONDS - t0)) s" >&2
