import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesIdentify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify",
        abstract: "Name the person in each photo, or `unknown` beyond the model's distance threshold.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file.") var gallery: String
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Photos to identify.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.isEmpty { throw ValidationError("give at least one photo") } }

    func run() throws {
        let fm = try FaceModel.loadOrBuiltIn(model)
        let g = try Gallery.load(gallery, for: fm)
        guard !g.people.isEmpty else { throw StrataError("\(gallery): the gallery has nobody enrolled") }
        let matches = try g.identify(images, model: fm, threshold: threshold)
        if json {
            printJSON(["threshold": Double(threshold ?? fm.threshold), "results": matches.map {
                ["image": $0.image, "name": $0.name ?? "unknown", "nearest": $0.nearest, "distance": Double($0.distance)] as [String: Any]
            }])
        } else {
            print(matches.map { m in
                "\(m.image): \(m.name ?? "unknown") (distance \(String(format: "%.3f", m.distance))\(m.name == nil ? ", nearest \(m.nearest)" : ""))"
            }.joined(separator: "\n"))
        }
    }
}
