import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct StrataCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Strata: deep learning in Swift.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Summary.self, Inspect.self, Faces.self, Classic.self, Export.self, Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, measured like the reference scripts in ../shared/bench/reference.",
        subcommands: [BenchGemm.self, BenchTrain.self, BenchFaces.self])
}

// Every error ends the same way: one clear message on stderr and exit status 1, no trace.
TemporaryFiles.removeOnSignals()
do {
    var command = try StrataCLI.parseAsRoot()
    try command.run()
} catch {
    if StrataCLI.exitCode(for: error) == .success { StrataCLI.exit(withError: error) }
    let message = error is StrataError ? "error: \(error)" : StrataCLI.fullMessage(for: error)
    fputs(message + "\n", stderr)
    exit(1)
}
