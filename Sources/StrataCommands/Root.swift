import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct StrataCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Strata: deep learning in Swift.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Summary.self, Inspect.self, Faces.self, Classic.self, Export.self, Import.self, Embed.self, Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, measured like the reference scripts in ../shared/bench/reference.",
        subcommands: [BenchGemm.self, BenchTrain.self, BenchFaces.self, BenchInfer.self, BenchEmbed.self])
}

/// The `strata` command line, run by the `strata` executable and by `strata-mpi` (the same
/// commands, with Open MPI installed through `StrataCommandLine.distributed`).
public enum StrataCommandLine {
    /// Parses the process's arguments, runs the command and exits: every error ends the same way,
    /// one clear message on stderr and exit status 1, no trace.
    public static func main() -> Never {
        TemporaryFiles.removeOnSignals()
        do {
            var command = try StrataCLI.parseAsRoot()
            try command.run()
            try distributed?.finish()
        } catch {
            if StrataCLI.exitCode(for: error) == .success { StrataCLI.exit(withError: error) }
            let message = error is StrataError || distributed?.isTransportError(error) == true
                ? "error: \(error)" : StrataCLI.fullMessage(for: error)
            fputs(message + "\n", stderr)
            exit(1)
        }
        exit(0)
    }

    /// What `--distributed` trains over, installed by `strata-mpi` before `main()`; nil in the
    /// `strata` executable, which does not link Open MPI and hands a `--distributed` run under
    /// `mpirun` to `strata-mpi` beside it.
    nonisolated(unsafe) public static var distributed: DistributedSupport?
}

/// Data-parallel training's transport, for the command line.
public struct DistributedSupport {
    /// The processes started together by `mpirun`, as a communicator (initialising MPI).
    public var world: () throws -> Communicator
    /// Called once the command succeeded (MPI_Finalize).
    public var finish: () throws -> Void
    /// Whether an error is the transport's own (printed as one line, as Strata's errors).
    public var isTransportError: (Error) -> Bool

    public init(world: @escaping () throws -> Communicator, finish: @escaping () throws -> Void, isTransportError: @escaping (Error) -> Bool) {
        (self.world, self.finish, self.isTransportError) = (world, finish, isTransportError)
    }
}
