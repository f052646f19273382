import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed",
        abstract: "Print the face embedding of each photo (one JSON line per photo), e.g. to compare or cluster faces elsewhere.")

    @Option(help: "Face model file (default: the built-in LFW model); repeat it to join several models' embeddings.") var model: [String] = []
    @Option(help: "A folder with one sub-folder per person instead of photos: every photo, with its person.") var data: String?
    @Option(help: "Test-time views per photo (default: the model's own).") var views: Int?
    @Option(help: "The part of each photo \"cx,cy,side\" that matches a whole training photo (see faces evaluate --frame).") var frame: FrameArgument?
    @Argument(help: "Photos, or folders of photos.") var images: [String] = []
    @OptionGroup var detection: DetectionOptions

    func validate() throws {
        if images.isEmpty == (data == nil) { throw ValidationError("give photos or --data DIR (not both)") }
        try checkViews(views)
        if frame != nil && !detection.noDetect { throw ValidationError("--frame reframes photos for the fixed box: add --no-detect") }
    }

    func run() throws {
        let folder = try data.map { try ImageFolder.files($0) }
        let paths = try folder?.map(\.path) ?? ImageFolder.expanding(images)
        let fm = try FaceModel.joined(model), finding = try detection.finding(for: fm)
        let (e, boxes, notes): (Tensor, [FaceBox]?, [String]) = frame != nil
            ? (try fm.embedFiles(paths, frame: frame?.crop, views: views), nil, [])
            : try fm.embedFaces(paths, finding: finding, views: views)
        for n in notes { FileHandle.standardError.write(Data((n + "\n").utf8)) }
        print(zip(paths.indices, e.rows).map { i, row in
            var line: [String: Any] = ["image": paths[i], "embedding": row.map(Double.init)]
            if let b = boxes?[i], finding.detector != nil { line["box"] = [b.x, b.y, b.side].map { round1($0) } }
            if let folder { line["person"] = folder[i].person }
            return jsonLine(line)
        }.joined(separator: "\n"))
    }
}
