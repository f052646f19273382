// Open MPI's C API, found through pkg-config's ompi-c (Debian: libopenmpi-dev). Only the C shim
// CStrataMPI includes it; Swift sees the shim's plain C functions, not mpi.h's macros.
#include <mpi.h>
