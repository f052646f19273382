import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

extension FaceModel {
    /// File name of the face model that ships with Strata (trained on LFW photos; the recipe is
    /// in `Sources/StrataFaces/Resources/faces-lfw.md`).
    public static let builtInFileName = "faces-lfw.safetensors"

    /// Where the shipped model is looked for, in order: the resource folder SwiftPM copies next to
    /// the executable (`Strata_StrataFaces.resources`), then the source checkout this library was built
    /// from. Looking ourselves (rather than through `Bundle.module`) turns a missing file into an
    /// error instead of a crash.
    public static var builtInCandidates: [String] { resourceCandidates(builtInFileName) }

    /// Where a file shipped in StrataFaces' resources is looked for, in the order above.
    public static func resourceCandidates(_ fileName: String) -> [String] {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()   // Sources/StrataFaces
        return [
            exe.appendingPathComponent("Strata_StrataFaces.resources").appendingPathComponent(fileName).path,
            Bundle.main.bundleURL.appendingPathComponent("Strata_StrataFaces.resources").appendingPathComponent(fileName).path,
            source.appendingPathComponent("Resources").appendingPathComponent(fileName).path,
        ]
    }

    /// The face model shipped with Strata: three CNNs (3 conv blocks, 128-d embeddings each) on three face
    /// regions, trained with CosFace on the 4,110 LFW photos of `lfw_train` (1,097 people), with five
    /// test-time views per photo; for photos where the face is roughly centred.
    ///
    /// ```swift
    /// let fm = try FaceModel.builtIn()
    /// let e = try fm.embed([try Image.load("me.jpg")])
    /// ```
    public static func builtIn() throws -> FaceModel {
        let candidates = builtInCandidates
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw StrataError("the built-in face model \(builtInFileName) is not installed (looked in \(candidates.joined(separator: ", ")))")
        }
        return try load(path)
    }
}
