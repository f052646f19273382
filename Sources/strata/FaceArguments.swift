import ArgumentParser
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
