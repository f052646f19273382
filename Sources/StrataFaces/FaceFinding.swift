import Foundation
import StrataCore
import StrataNN
import StrataData

/// How the face tasks find the face in a photo: with the detector (the default), or the fixed
/// box of photos already framed like LFW's (`--no-detect`).
///
/// ```swift
/// let finding = try FaceFinding.detecting()                 // the built-in detector
/// let (img, faces, scale) = try finding.faces(in: "party.jpg")   // every face, strongest first
/// let one = try finding.face(in: "me.jpg", policy: .largest)
/// ```
public struct FaceFinding {
    /// Nil: every photo is taken as one LFW-like face photo.
    public var detector: FaceDetector?
    /// Faces smaller than this (pixels of the photo) are not looked for.
    public var minSize: Double = 20
    /// Score threshold (nil: the detector's own).
    public var threshold: Float?

    public init(detector: FaceDetector?, minSize: Double = 20, threshold: Float? = nil) {
        (self.detector, self.minSize, self.threshold) = (detector, minSize, threshold)
    }

    /// The fixed box: photos framed like LFW's.
    public static let fixedBox = FaceFinding(detector: nil)

    /// Detection with the detector at `path`, or the built-in one.
    public static func detecting(_ path: String? = nil, minSize: Double = 20, threshold: Float? = nil) throws -> FaceFinding {
        FaceFinding(detector: try path.map { try FaceDetector.load($0) } ?? FaceDetector.builtIn(), minSize: minSize, threshold: threshold)
    }

    /// What to do when a photo that should show one person shows several.
    public enum Policy {
        /// Use the largest face and say so.
        case largest
        /// Refuse the photo (enrolling).
        case single
    }

    /// The photo and every face in it, strongest first, each box refined for framing
    /// (`FaceDetector.refine`). EXIF orientation is applied, and a JPEG is decoded at a reduced
    /// scale (libjpeg's DCT scaling) when the detector needs no more: the longer side stays at
    /// least the detector's 640 px. The image may so be a reduced decode of the photo; `scale` maps its
    /// pixels to the photo's (boxes in the photo's pixels are `box.scaled(by: scale)`).
    public func faces(in path: String) throws -> (image: Image, faces: [FaceBox], scale: Int) {
        guard let detector else {
            let img = try Image.load(path)
            return (img, [LFWFaceBox.box(width: img.width, height: img.height)], 1)
        }
        let (img, scale) = try Image.loadReduced(path, maxSide: detector.settings.maxSide)
        let minimum = minSize / Double(scale)
        return (img, detector.detect(img, minSize: minimum, threshold: threshold).map { detector.refine($0, in: img) }, scale)
    }

    /// One face of the photo as an LFW-framed photo, the box, and a note when a choice was made.
    /// Throws, naming the file, when there is no face, or several under `.single`.
    public func face(in path: String, policy: Policy) throws -> (photo: Image, box: FaceBox, note: String?) {
        let (img, found, scale) = try faces(in: path)
        guard detector != nil else { return (img, found[0], nil) }
        guard let largest = found.max(by: { $0.side < $1.side }) else {
            throw StrataError(FaceFinding.noFaceMessage(path, img, minSize: minSize))
        }
        var note: String?
        if found.count > 1 {
            guard policy == .largest else {
                throw StrataError("\(path): \(found.count) faces found; give a photo of one person, or --largest to use the biggest face")
            }
            note = "\(path): \(found.count) faces found, using the largest (\(largest.scaled(by: scale).describe))"
        }
        return (largest.lfwPhoto(from: img), largest.scaled(by: scale), note)
    }

    public static func noFaceMessage(_ path: String, _ img: Image, minSize: Double) -> String {
        Double(Swift.min(img.width, img.height)) < minSize
            ? "\(path): no face: the photo is \(img.width)x\(img.height) pixels, smaller than the smallest face looked for (\(Int(minSize)) px)"
            : "\(path): no face found (faces of at least \(Int(minSize)) px are looked for)"
    }
}

extension FaceBox {
    /// The box in a picture `scale` times larger.
    public func scaled(by scale: Int) -> FaceBox {
        let k = Double(scale)
        return FaceBox(x: x * k, y: y * k, side: side * k, score: score)
    }

    /// "x,y side" in whole pixels, and the score.
    public var describe: String {
        String(format: "box %d,%d side %d, score %.2f", Int(x.rounded()), Int(y.rounded()), Int(side.rounded()), score)
    }
}

extension FaceModel {
    /// Whether every network cuts its face box from an LFW-framed photo (a `face_crop`), so a
    /// detected face can be framed for it. Models trained on whole tight crops cannot.
    public var framesLikeLFW: Bool { networks.allSatisfy { $0.crop != nil } }

    /// Embeddings `[N, D]` of one face per photo file, found by `finding`; notes say where the
    /// largest of several faces was used. Errors name the file.
    public func embedFaces(_ paths: [String], finding: FaceFinding, policy: FaceFinding.Policy = .largest, views: Int? = nil) throws -> (Tensor, [FaceBox], [String]) {
        var boxes: [FaceBox] = [], notes: [String] = []
        let e = try embedInChunks(paths.count, views: views) { r in
            var photos: [Image] = []
            for p in paths[r] {
                let f = try finding.face(in: p, policy: policy)
                photos.append(f.photo)
                boxes.append(f.box)
                if let n = f.note { notes.append(n) }
            }
            return (photos, Array(paths[r]))
        }
        return (e, boxes, notes)
    }
}

/// One face of a photo identified against a gallery.
public struct IdentifiedFace {
    public let image: String
    public let box: FaceBox
    public let match: FaceMatch
}

extension Gallery {
    /// Every face of every photo, each named or unknown. Photos without a face are listed in
    /// `noFace` (with the reason) and the rest go on.
    public func identifyFaces(_ photos: [String], model: FaceModel, finding: FaceFinding, threshold: Float? = nil) throws -> (faces: [IdentifiedFace], noFace: [String]) {
        guard !people.isEmpty else { throw StrataError("the gallery has nobody enrolled") }
        let t = threshold ?? model.threshold, scorer = model.scorer
        var out: [IdentifiedFace] = [], none: [String] = []
        for path in photos {
            let (img, found, scale) = try finding.faces(in: path)
            guard !found.isEmpty else {
                none.append(FaceFinding.noFaceMessage(path, img, minSize: finding.minSize))
                continue
            }
            let crops = finding.detector == nil ? [img] : found.map { $0.lfwPhoto(from: img) }
            let e = try model.embed(crops, names: found.map { _ in path })
            for (box, row) in zip(found, e.rows) {
                let (name, dist) = nearest(row, scorer: scorer)!
                out.append(IdentifiedFace(image: path, box: box.scaled(by: scale), match: FaceMatch(image: path, name: dist <= t ? name : nil, nearest: name, distance: dist)))
            }
        }
        return (out, none)
    }
}
