#!/usr/bin/env bash
# Sites of a disordered host found from where the ions sit, then an MSM on them
# (examples/landscape/README.md, docs/site-discovery.md):
#   1. make_landscape.py: Gaussian wells at random positions in a triclinic cell (the host);
#   2. LAMMPS, stage density: equilibrate, accumulate the ion density (fix ave/grid, dump grid);
#   3. ionmsm sites: sites.txt (+ sites.png) from the density; compared with the true wells;
#   4. LAMMPS, stage production: fix msm on sites.txt (nearest site, and core sets of radius
#      --core for the fraction of samples within that radius of a site);
#   5. ionmsm analyze on both counts files; summarize.py: slowest ITS per lag, CK errors,
#      fraction of samples within --core of a site.
#
#   examples/landscape/run.sh                       # about 2-5 minutes on one core
#   examples/landscape/run.sh --wells 30 --nions 60 --neq 1000 --naccum 4000 --nprod 4000 \
#     --grid "45 42 39" --out /tmp/l                                          # tiny
#
# Options: --wells N (200), --nions N (200), --neq N (5000), --naccum N (50000),
#          --nprod N (100000), --grid "NX NY NZ" (75 70 65), --min-separation R (1.0),
#          --min-occupancy X (0.05), --core R (0.5), --seed S (2024), --np RANKS (1),
#          --out DIR (out/landscape).
# Output: DIR/{landscape.lmp,landscape.table,wells.txt,dens.grid,sites.txt,sites.png,
#         compare.txt,counts.h5,counts_core.h5,log.*.lammps,analysis/,analysis_core/,
#         summary.txt}
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/examples/landscape"
BUILD="${IONMSM_BUILD_DIR:-$ROOT/build}"
IONMSM="${IONMSM:-$BUILD/ionmsm}"
LMP_WRAPPER="${IONMSM_LMP:-$ROOT/scripts/lmp}"
WELLS=200; NIONS=200; NEQ=5000; NACCUM=50000; NPROD=100000; GRID="75 70 65"
MINSEP=1.0; MINOCC=0.05; CORE=0.5; SEED=2024; NP=1; OUT="$ROOT/out/landscape"
while [ $# -gt 0 ]; do
  case "$1" in
    --wells) WELLS="$2"; shift 2 ;;
    --nions) NIONS="$2"; shift 2 ;;
    --neq) NEQ="$2"; shift 2 ;;
    --naccum) NACCUM="$2"; shift 2 ;;
    --nprod) NPROD="$2"; shift 2 ;;
    --grid) GRID="$2"; shift 2 ;;
    --min-separation) MINSEP="$2"; shift 2 ;;
    --min-occupancy) MINOCC="$2"; shift 2 ;;
    --core) CORE="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --np) NP="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "$0: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
lmp() {
  if [ "$NP" -gt 1 ]; then mpirun -np "$NP" "$LMP_WRAPPER" "$@"; else "$LMP_WRAPPER" "$@"; fi
}
mkdir -p "$OUT"
cd "$OUT"
t0=$SECONDS
/usr/bin/python3 "$HERE/make_landscape.py" --out . --wells "$WELLS" --seed "$SEED"
echo "[landscape] density: $NEQ + $NACCUM steps, grid $GRID" >&2
lmp -in "$HERE/in.landscape" -log log.density.lammps -screen none -var stage density \
  -var nions "$NIONS" -var neq "$NEQ" -var naccum "$NACCUM" -var grid "$GRID" \
  -var seed $((SEED + 1))
"$IONMSM" sites dens.grid --out sites.txt --min-separation "$MINSEP" --min-occupancy "$MINOCC"
/usr/bin/python3 "$HERE/compare_sites.py" wells.txt sites.txt --cell landscape.lmp \
  | tee compare.txt
echo "[landscape] production: $NEQ + $NPROD steps on the found sites" >&2
lmp -in "$HERE/in.landscape" -log log.production.lammps -screen none -var stage production \
  -var nions "$NIONS" -var neq "$NEQ" -var nprod "$NPROD" -var sites sites.txt \
  -var core "$CORE" -var seed $((SEED + 2))
"$IONMSM" info counts_core.h5 | grep -i "core" || true
if "$IONMSM" analyze --help > /dev/null 2>&1; then
  "$IONMSM" analyze counts.h5 --out analysis
  "$IONMSM" analyze counts_core.h5 --out analysis_core
  /usr/bin/python3 "$HERE/summarize.py" . | tee summary.txt
fi
echo "[landscape] done in $((SECONDS - t0)) s: $OUT" >&2
