// strata-mpi: the `strata` command with Open MPI, for `--distributed` training under mpirun.
// `strata` itself does not link Open MPI; under mpirun, its `--distributed` runs this executable
// (found beside it) with the same arguments. README "Distributed training (Open MPI)".
import Foundation
import StrataCommands
import StrataDistributed

StrataCommandLine.distributed = DistributedSupport(
    world: {
        let world = try ProcessGroup.world()
        // mpirun ends the other processes with SIGTERM when one dies: each says so in one line.
        world.installStopHandler(program: "")
        return world
    },
    finish: { try ProcessGroup.finalize() },
    isTransportError: { $0 is MPIError })
StrataCommandLine.main()
