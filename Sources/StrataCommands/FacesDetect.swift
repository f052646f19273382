import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesDetect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "detect",
        abstract: "Find the faces in photos: each face's box and score; optionally the crops and a picture with the boxes drawn.")

    @Argument(help: "Photos, or folders of photos.") var images: [String]
    @Option(help: "Face detector file (default: the built-in one).") var detector: String?
    @Option(help: "Smallest face looked for, in pixels.") var minSize: Double = 20
    @Option(help: "Score threshold in (0, 1) (default: the detector's own).") var threshold: Float?
    @Option(help: "Write each face (framed like an LFW photo) and each photo with its boxes drawn (PNG) here.") var out: String?
    @Flag(help: "Print one JSON line per photo.") var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
        if !(minSize > 0 && minSize <= 10_000) { throw ValidationError("--min-size must be in (0, 10000] pixels, got \(minSize)") }
        if let t = threshold, !(t > 0 && t < 1) { throw ValidationError("--threshold must be in (0, 1), got \(t)") }
    }

    func run() throws {
        let finding = try FaceFinding.detecting(detector, minSize: minSize, threshold: threshold)
        var failed = 0
        let images = try ImageFolder.expanding(self.images)
        for path in images {
            let img: Image, found: [FaceBox], scale: Int
            do { (img, found, scale) = try finding.faces(in: path) } catch {
                fputs("error: \(error)\n", stderr)
                failed += 1
                continue
            }
            let written = try out.map { try FaceDetectionOutput.write(img, faces: found, photo: path, to: $0) } ?? []
            let faces = found.map { $0.scaled(by: scale) }   // in the photo's pixels (a large JPEG is decoded reduced)
            if json {
                printJSON(["image": path, "decoded_scale": scale, "written": written, "faces": faces.map {
                    ["x": round1($0.x), "y": round1($0.y), "side": round1($0.side), "score": round1(Double($0.score) * 1000) / 1000]
                }])
            } else if faces.isEmpty {
                print(FaceFinding.noFaceMessage(path, img, minSize: minSize))
            } else {
                print("\(path): \(faces.count) face\(faces.count == 1 ? "" : "s")")
                for f in faces { print("  \(f.describe)") }
                for w in written { print("  wrote \(w)") }
            }
        }
        if failed > 0 { throw StrataError("\(failed) of \(images.count) photos could not be read") }
    }
}
