import ArgumentParser
import Foundation
import Strata

struct StrataCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Strata: deep learning in Swift.",
        subcommands: [Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, measured like the reference scripts in ../shared/bench/reference.",
        subcommands: [BenchGemm.self])
}

StrataCLI.main()
