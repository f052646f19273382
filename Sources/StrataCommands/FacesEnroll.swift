import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enroll", abstract: "Add a person to a gallery from a few photos.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file (created if missing; written atomically).") var gallery: String
    @Option(help: "The person's name.") var name: String
    @Argument(help: "Photos of the person, or a folder of them.") var images: [String]
    @Flag(help: "Use the largest face of a photo with several (default: refuse it).") var largest = false
    @OptionGroup var detection: DetectionOptions
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--name must not be empty") }
    }

    func run() throws {
        let fm = try FaceModel.loadOrBuiltIn(model)
        let (count, people) = try Gallery.enroll(name, photos: try ImageFolder.expanding(images), model: fm, gallery: gallery,
                                                   finding: try detection.finding(for: fm), policy: largest ? .largest : .single)
        if json { printJSON(["gallery": gallery, "name": name, "photos": count, "people": people]) } else {
            print("enrolled \(name) (\(count) photo\(count == 1 ? "" : "s")); \(gallery) holds \(people) \(people == 1 ? "person" : "people")")
        }
    }
}
