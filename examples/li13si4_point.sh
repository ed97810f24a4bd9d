# Shared by examples/finite_size/run.sh and examples/temperature/run.sh (sourced, not run).
# Expects ROOT, IONMSM, LMP_WRAPPER, NP, NEQ, NPROD, NEVERY to be set by the caller.
#
#   li13si4_setup                         -> LMP (the lmp command, under mpirun if NP > 1),
#                                            HAVE_ANALYZE (1 if ionmsm has the analyze verb)
#   li13si4_point TAG DIR NX NY NZ T SEED -> runs examples/li13si4 in DIR, then analyze;
#                                            exits with the analyze log on failure

li13si4_setup() {
  EX="$ROOT/examples/li13si4"
  LMP=("$LMP_WRAPPER")
  if [ "$NP" -gt 1 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    LMP=(mpirun -np "$NP" "$LMP_WRAPPER")
  fi
  HAVE_ANALYZE=0
  "$IONMSM" analyze --help > /dev/null 2>&1 && HAVE_ANALYZE=1
  return 0
}

li13si4_point() {
  local tag="$1" d="$2" nx="$3" ny="$4" nz="$5" temp="$6" seed="$7"
  mkdir -p "$d"
  rm -f "$d/counts.h5"
  (cd "$d" && "${LMP[@]}" -in "$EX/in.li13si4" -log log.lammps -screen none \
     -var potdir "$ROOT/potentials/LiSi_Cui2012" -var datadir "$EX" \
     -var nx "$nx" -var ny "$ny" -var nz "$nz" -var T "$temp" -var neq "$NEQ" \
     -var nprod "$NPROD" -var nevery "$NEVERY" -var seed "$seed" -var out counts.h5)
  if [ "$HAVE_ANALYZE" = 1 ]; then
    (cd "$d" && "$IONMSM" analyze counts.h5 --out analysis > analyze.log 2>&1) || {
      echo "[$tag] ionmsm analyze failed in $d:" >&2; tail -n 20 "$d/analyze.log" >&2; exit 1; }
  fi
}
