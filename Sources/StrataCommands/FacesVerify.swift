import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Are two photos of the same person?")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Two photos.") var images: [String]
    @OptionGroup var detection: DetectionOptions
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.count != 2 { throw ValidationError("give exactly two photos, got \(images.count)") } }

    func run() throws {
        let fm = try FaceModel.loadOrBuiltIn(model)
        let v = try fm.verify(images[0], images[1], threshold: threshold, finding: try detection.finding(for: fm))
        if json { printJSON(["same": v.same, "distance": Double(v.distance), "threshold": Double(v.threshold), "notes": v.notes]) } else {
            for n in v.notes { print(n) }
            print("\(v.same ? "same" : "different") (distance \(String(format: "%.3f", v.distance)), threshold \(String(format: "%.3f", v.threshold)))")
        }
    }
}
