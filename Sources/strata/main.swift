// The `strata` command (Sources/StrataCommands), without Open MPI: `--distributed` under mpirun
// runs `strata-mpi` instead (README "Distributed training (Open MPI)").
import StrataCommands

StrataCommandLine.main()
