import ArgumentParser
import Foundation
import StrataData
import StrataFaces

// Enumerated and structured face options, parsed (and refused with a clear line) by ArgumentParser.
extension FaceLoss: ExpressibleByArgument {}
extension FaceScore: ExpressibleByArgument {}
extension FaceAugmentPreset: ExpressibleByArgument {}

/// `--frame`/`--extra-frame` "cx,cy,side": the part of a photo that matches a whole training photo.
struct FrameArgument: ExpressibleByArgument {
    let crop: FaceCrop
    init?(argument: String) {
        guard let c = FaceCrop.parseFrame(argument) else { return nil }
        crop = c
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// `--crop` "cx,cy,side": a face box as fractions of the photo.
struct CropArgument: ExpressibleByArgument {
    let crop: FaceCrop
    init?(argument: String) {
        guard let c = FaceCrop.parse(argument, size: 64) else { return nil }
        crop = c
    }
}

/// A comma-separated list of positive integers ("1,1,1,1"); empty is allowed.
struct IntList: ExpressibleByArgument {
    let values: [Int]
    init?(argument: String) {
        if argument.trimmingCharacters(in: .whitespaces).isEmpty { values = []; return }
        let v = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard v.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
        values = v.map { $0! }
    }
}

/// `--views`: test-time views per photo, as many as `Warp.views` defines.
func checkViews(_ v: Int?) throws {
    if let v, !(1...Warp.views(99).count).contains(v) { throw ValidationError("--views must be between 1 and \(Warp.views(99).count), got \(v)") }
}

/// How the face commands find faces: the detector by default, `--no-detect` for photos already framed like LFW's.
struct DetectionOptions: ParsableArguments {
    @Flag(help: "Photos are already framed like LFW's: use the fixed centre box instead of detecting faces.") var noDetect = false
    @Option(help: "Face detector file (default: the built-in one).") var detector: String?
    @Option(help: "Smallest face looked for, in pixels.") var minSize: Double = 20
    @Option(help: "Detection score threshold in (0, 1) (default: the detector's own).") var detectThreshold: Float?

    func validate() throws {
        if !(minSize > 0 && minSize <= 10_000) { throw ValidationError("--min-size must be in (0, 10000] pixels, got \(minSize)") }
        if let t = detectThreshold, !(t > 0 && t < 1) { throw ValidationError("--detect-threshold must be in (0, 1), got \(t)") }
        if noDetect && (detector != nil || detectThreshold != nil) { throw ValidationError("--no-detect takes no --detector or --detect-threshold") }
    }

    /// Detection for models that cut their face from an LFW-framed photo; models trained on
    /// whole tight crops (AT&T's, say) take photos whole, as before.
    func finding(for model: FaceModel) throws -> FaceFinding {
        noDetect || !model.framesLikeLFW ? .fixedBox : try .detecting(detector, minSize: minSize, threshold: detectThreshold)
    }
}
