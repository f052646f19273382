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
    @Argument(help: "Photos.") var images: [String] = []

    func validate() throws {
        if images.isEmpty == (data == nil) { throw ValidationError("give photos or --data DIR (not both)") }
        try checkViews(views)
    }

    func run() throws {
        let folder = try data.map { try ImageFolder.files($0) }
        let paths = folder?.map(\.path) ?? images
        let e = try FaceModel.joined(model).embedFiles(paths, frame: frame?.crop, views: views)
        print(zip(paths.indices, e.rows).map { i, row in
            var line: [String: Any] = ["image": paths[i], "embedding": row.map(Double.init)]
            if let folder { line["person"] = folder[i].person }
            return jsonLine(line)
        }.joined(separator: "\n"))
    }
}
