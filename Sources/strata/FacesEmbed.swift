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
    @Option(help: "The part of each photo \"cx,cy,side\" that matches a whole training photo (see faces evaluate --frame).") var frame: String?
    @Argument(help: "Photos.") var images: [String] = []

    func validate() throws {
        if images.isEmpty == (data == nil) { throw ValidationError("give photos or --data DIR (not both)") }
        if let v = views, !(1...Warp.views(99).count).contains(v) { throw ValidationError("--views must be between 1 and \(Warp.views(99).count), got \(v)") }
        try checkFrame(frame, "--frame")
    }

    func run() throws {
        let models = try model.isEmpty ? [FaceModel.builtIn()] : model.map { try FaceModel.load($0) }
        let fm = FaceModel(ensemble: models, threshold: models[0].threshold)
        var paths = images, people: [String]? = nil
        if let data {
            let folder = try ImageFolder.files(data)
            paths = folder.map(\.path)
            people = folder.map(\.person)
        }
        let box = frame.flatMap(FaceCrop.parseFrame)
        let e = try fm.embed(try paths.map { p in let img = try Image.load(p); return box.map { $0.reframe(img) } ?? img },
                             names: paths, views: views)
        let d = e.shape[1], v = e.scalars
        for (i, p) in paths.enumerated() {
            var row: [String: Any] = ["image": p, "embedding": v[(i * d)..<((i + 1) * d)].map(Double.init)]
            if let people { row["person"] = people[i] }
            printJSON(row)
        }
    }
}
