import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesIdentify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify",
        abstract: "Name every face in each photo, or `unknown` beyond the model's distance threshold.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file.") var gallery: String
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Photos to identify, or folders of them.") var images: [String]
    @OptionGroup var detection: DetectionOptions
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.isEmpty { throw ValidationError("give at least one photo") } }

    func run() throws {
        let fm = try FaceModel.loadOrBuiltIn(model)
        let g = try Gallery.load(gallery, for: fm)
        guard !g.people.isEmpty else { throw StrataError("\(gallery): the gallery has nobody enrolled") }
        let finding = try detection.finding(for: fm)
        let (faces, noFace) = try g.identifyFaces(try ImageFolder.expanding(images), model: fm, finding: finding, threshold: threshold)
        if json {
            printJSON(["threshold": Double(threshold ?? fm.threshold), "no_face": noFace, "results": faces.map { f -> [String: Any] in
                var r: [String: Any] = ["image": f.image, "name": f.match.name ?? "unknown", "nearest": f.match.nearest, "distance": Double(f.match.distance)]
                if finding.detector != nil { r["box"] = [f.box.x, f.box.y, f.box.side].map { round1($0) }; r["score"] = Double(f.box.score) }
                return r
            }])
        } else {
            for n in noFace { print(n) }
            print(faces.map { f in
                let m = f.match, at = finding.detector == nil ? "" : " at \(Int(f.box.x.rounded())),\(Int(f.box.y.rounded())) side \(Int(f.box.side.rounded()))"
                return "\(m.image)\(at): \(m.name ?? "unknown") (distance \(String(format: "%.3f", m.distance))\(m.name == nil ? ", nearest \(m.nearest)" : ""))"
            }.joined(separator: "\n"))
        }
    }
}
