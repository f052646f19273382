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
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw StrataError("\(out): cannot create folder (\(error.localizedDescription))")
        }
        for i in 0..<min(count, data.count) {
            let label = data.classNames[data.labels[i]].replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: " ", with: "_")
            let path = (out as NSString).appendingPathComponent(String(format: "%@-%04d-%@.png", split, i, label))
            try data.image(i).savePNG(path)
            print(path)
        }
    }
}
