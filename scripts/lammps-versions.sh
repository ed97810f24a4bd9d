# Sourced by scripts/setup, scripts/lmp, scripts/test and scripts/demo: the LAMMPS versions
# ionmsm builds and tests against, chosen with IONMSM_LAMMPS (default 4Feb2025).
#
# Each version has its own cache prefix ($IONMSM_CACHE/lammps-<version>) and the plugin built
# against it its own build directory (build/ for the default, build-<version>/ otherwise;
# IONMSM_BUILD_DIR overrides). The table below is the one place that names them; README.md
# ("LAMMPS versions") lists the same versions with the command that tests each.
#
# After sourcing: LMP_VERSION, LMP_DEB_VERSION (Debian source package version), LMP_SUITE
# (the Debian suite that has it), LMP_ORIG (its orig tarball), LMP_SRCNAME (unpacked source
# directory under $CACHE/src), LAMMPS_PREFIX, BUILD.

IONMSM_LAMMPS_DEFAULT=4Feb2025
IONMSM_LAMMPS_KNOWN="4Feb2025 4Jul2026"

ionmsm_select_lammps() {
  local root="$1"
  LMP_VERSION="${IONMSM_LAMMPS:-$IONMSM_LAMMPS_DEFAULT}"
  case "$LMP_VERSION" in
    4Feb2025)  # Debian trixie
      LMP_DEB_VERSION="20250204+dfsg.1-2"; LMP_SUITE=trixie
      LMP_ORIG="lammps_20250204+dfsg.1.orig.tar.xz"; LMP_SRCNAME=lammps-20250204 ;;
    4Jul2026)  # Debian sid (its .dsc is not downloadable; the orig tarball is)
      LMP_DEB_VERSION="20260704+dfsg-2"; LMP_SUITE=sid
      LMP_ORIG="lammps_20260704+dfsg.orig.tar.gz"; LMP_SRCNAME=lammps-20260704 ;;
    *)
      echo "IONMSM_LAMMPS='$LMP_VERSION' is not a LAMMPS version ionmsm builds;" \
           "known: $IONMSM_LAMMPS_KNOWN (see README.md, 'LAMMPS versions')" >&2
      return 1 ;;
  esac
  LAMMPS_PREFIX="${IONMSM_CACHE:-$HOME/.cache/ionmsm}/lammps-$LMP_VERSION"
  if [ "$LMP_VERSION" = "$IONMSM_LAMMPS_DEFAULT" ]; then
    BUILD="${IONMSM_BUILD_DIR:-$root/build}"
  else
    BUILD="${IONMSM_BUILD_DIR:-$root/build-$LMP_VERSION}"
  fi
}
