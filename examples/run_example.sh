#!/usr/bin/env bash
# Runs one MEAM example (li13si4 or li12si7) with fix msm, then `ionmsm info` and, when the
# tool has it, `ionmsm analyze`. Extra arguments go to LAMMPS (e.g. -var nprod 100000).
#
#   examples/run_example.sh li12si7 out/li12si7                       # defaults of the input
#   examples/run_example.sh li12si7 out/quick -var neq 500 -var nprod 5000   # ~30 s check
#   NP=2 examples/run_example.sh li13si4 out/li13si4 -var nprod 200000      # 2 MPI ranks
#
# Writes OUTDIR/counts.h5, info.txt, log.lammps and OUTDIR/analysis/ (report.json, plots).
# Needs scripts/setup to have run (cached LAMMPS + build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${IONMSM_BUILD_DIR:-$ROOT/build}"
if [ $# -lt 2 ]; then
  echo "usage: $0 li13si4|li12si7 OUTDIR [LAMMPS arguments, e.g. -var nprod 5000]" >&2
  exit 2
fi
NAME="$1"; OUT="$2"; shift 2
EX="$ROOT/examples/$NAME"
[ -f "$EX/in.$NAME" ] || { echo "$0: no example '$NAME' (examples/$NAME/in.$NAME)" >&2; exit 2; }
NP="${NP:-1}"
mkdir -p "$OUT"
cd "$OUT"
rm -f counts.h5
LMP=("$ROOT/scripts/lmp")
if [ "$NP" -gt 1 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  LMP=(mpirun -np "$NP" "$ROOT/scripts/lmp")
fi
t0=$SECONDS
"${LMP[@]}" -in "$EX/in.$NAME" -log log.lammps -screen none \
  -var potdir "$ROOT/potentials/LiSi_Cui2012" -var datadir "$EX" -var out counts.h5 "$@"
echo "[$NAME] LAMMPS finished in $((SECONDS - t0)) s" >&2
"$BUILD/ionmsm" info counts.h5 > info.txt
if "$BUILD/ionmsm" analyze --help > /dev/null 2>&1; then
  "$BUILD/ionmsm" analyze counts.h5 --out analysis
  echo "[$NAME] wrote $OUT/analysis" >&2
else
  echo "[$NAME] this ionmsm has no 'analyze' verb yet: counts.h5 and info.txt only" >&2
fi
echo "[$NAME] done in $((SECONDS - t0)) s: $OUT" >&2
