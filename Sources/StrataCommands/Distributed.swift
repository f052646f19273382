import ArgumentParser
import Foundation
import Strata

/// `--distributed`: data-parallel training over the processes `mpirun` started.
struct DistributedOptions: ParsableArguments {
    @Flag(help: "Data-parallel training over the processes started by Open MPI's mpirun (mpirun -np 2 strata train --distributed ...): --batch-size is the batch of all the processes together, rank 0 prints and writes the files. Needs strata-mpi beside strata (make build-mpi).")
    var distributed = false

    /// The processes to train over, or nil without `--distributed`. Sets one compute thread per
    /// core and process (`--threads` and STRATA_NUM_THREADS still decide), so call it before
    /// `ThreadOptions.apply()`. In the `strata` executable, which has no Open MPI, the process
    /// is replaced by `strata-mpi` beside it, with the same arguments.
    func communicator() throws -> Communicator? {
        guard distributed else { return nil }
        let arguments = CommandLine.arguments.dropFirst().joined(separator: " ")
        guard ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil else {
            throw StrataError("--distributed trains over processes started by Open MPI: run it as `mpirun -np 2 strata \(arguments)` (as root add --allow-run-as-root)")
        }
        guard let support = StrataCommandLine.distributed else { try runStrataMPI() }
        if let t = DataParallel.threadsPerProcess() { Strata.numThreads = t }
        return try support.world()
    }

    /// Replaces this process by `strata-mpi` from the folder of this executable, or throws how to build it.
    private func runStrataMPI() throws -> Never {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = ((me as NSString).deletingLastPathComponent as NSString).appendingPathComponent("strata-mpi")
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw StrataError("--distributed needs strata-mpi (the strata command with Open MPI) beside \(me); build it with `make build-mpi` or `swift build -c release --product strata-mpi` (Debian: apt-get install openmpi-bin libopenmpi-dev)")
        }
        let argv = [path] + CommandLine.arguments.dropFirst()
        var cArgs = argv.map { strdup($0) } + [nil]
        execv(path, &cArgs)
        throw StrataError("--distributed: could not run \(path): \(String(cString: strerror(errno)))")
    }
}
