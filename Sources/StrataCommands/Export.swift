import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write dataset images out as PNG files named after their index and label.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "train or test.")
    var split: String = "test"

    @Option(help: "How many images, from the start of the split.")
    var count: Int = 8

    @Option(help: "Output folder (created if missing).")
    var out: String

    func validate() throws {
        guard ["train", "test"].contains(split) else { throw ValidationError("--split must be train or test, got \(split)") }
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count)") }
    }

    func run() throws {
        let data = try dataOptions.load(split == "train" ? .train : .test)
        print(try data.exportPNGs(count: count, to: out, prefix: split).joined(separator: "\n"))
    }
}
