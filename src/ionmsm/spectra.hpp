#pragma once
// Internal to the sources that use the Spectra eigensolvers (spectrum.cpp,
// spectrum_reversible.cpp, ck.cpp): include this first. GCC 12+ reports a false
// -Wuse-after-free inside Eigen's aligned_free (Eigen/src/Core/util/Memory.h) when it inlines
// Spectra's solvers; header code, not ours. The warning's location is in Eigen, so the pragma
// must precede the first Eigen include of the translation unit.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#include <Eigen/Dense>
#include <Eigen/Sparse>

#ifdef IONMSM_HAVE_SPECTRA
#include <Spectra/GenEigsRealShiftSolver.h>
#include <Spectra/GenEigsSolver.h>
#include <Spectra/MatOp/SparseGenMatProd.h>
#include <Spectra/MatOp/SparseGenRealShiftSolve.h>
#include <Spectra/MatOp/SparseSymMatProd.h>
#include <Spectra/SymEigsShiftSolver.h>
#include <Spectra/SymEigsSolver.h>
#endif
