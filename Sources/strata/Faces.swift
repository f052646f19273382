import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Faces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Face recognition: train an embedding, enrol people, identify and verify faces, evaluate.",
        subcommands: [FacesTrain.self, FacesEnroll.self, FacesIdentify.self, FacesVerify.self, FacesEvaluate.self, FacesPairs.self, FacesEmbed.self])
}

struct FacesEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enroll", abstract: "Add a person to a gallery from a few photos.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file (created if missing; written atomically).") var gallery: String
    @Option(help: "The person's name.") var name: String
    @Argument(help: "Photos of the person.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--name must not be empty") }
    }

    func run() throws {
        let (count, people) = try Gallery.enroll(name, photos: images, model: try FaceModel.loadOrBuiltIn(model), gallery: gallery)
        if json { printJSON(["gallery": gallery, "name": name, "photos": count, "people": people]) } else {
            print("enrolled \(name) (\(count) photo\(count == 1 ? "" : "s")); \(gallery) holds \(people) \(people == 1 ? "person" : "people")")
        }
    }
}

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

struct FacesVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Are two photos of the same person?")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Two photos.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.count != 2 { throw ValidationError("give exactly two photos, got \(images.count)") } }

    func run() throws {
        let v = try FaceModel.loadOrBuiltIn(model).verify(images[0], images[1], threshold: threshold)
        if json { printJSON(["same": v.same, "distance": Double(v.distance), "threshold": Double(v.threshold)]) } else {
            print("\(v.same ? "same" : "different") (distance \(String(format: "%.3f", v.distance)), threshold \(String(format: "%.3f", v.threshold)))")
        }
    }
}

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
