import Foundation
import StrataCore
import StrataNN

/// Labelled images read from `root/<label>/*.{png,jpg,jpeg,webp,heic,heif,avif,pgm,ppm}`: each folder is one class (one
/// person, for faces), its name the label. Images are converted to the requested channels and
/// resized to one size, and kept as 8-bit pixels.
///
/// ```swift
/// let faces = try ImageFolder.load("../shared/data/att_faces", channels: 1)
/// let (train, test) = faces.splitPerClass(trainPerClass: 5, seed: 0)
/// ```
public enum ImageFolder {
    /// The file names read (any case): what `Image.load` decodes.
    public static let extensions: Set<String> = ["pgm", "png", "jpg", "jpeg", "ppm", "webp", "heic", "heif", "avif"]

    /// Command-line arguments with each folder replaced by its files whose extension is in
    /// `extensions` (not its sub-folders), sorted as `files` sorts them; other arguments are kept
    /// as given. So `strata faces identify --gallery g.json holiday/` names every face in every
    /// photo of `holiday/`, as face_recognition's command takes a folder.
    ///
    /// ```swift
    /// let photos = try ImageFolder.expanding(["me.jpg", "holiday"])   // me.jpg, holiday/1.jpg, holiday/2.heic
    /// ```
    public static func expanding(_ paths: [String], extensions: Set<String> = extensions) throws -> [String] {
        let fm = FileManager.default
        return try paths.flatMap { path -> [String] in
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return [path] }
            let names: [String]
            do { names = try named(in: path, extensions) } catch { throw StrataError("\(path): cannot list the folder (\(error.localizedDescription))") }
            let files = names.filter { n in
                var d: ObjCBool = false
                return !n.hasPrefix(".") && fm.fileExists(atPath: (path as NSString).appendingPathComponent(n), isDirectory: &d) && !d.boolValue
            }
            guard !files.isEmpty else {
                throw StrataError("\(path): a folder with no files to read (\(extensions.sorted().map { "." + $0 }.joined(separator: ", ")))")
            }
            return files.map { (path as NSString).appendingPathComponent($0) }
        }
    }

    /// The names in `dir` with one of `extensions` (any case), numbers in numeric order (2 before 10).
    private static func named(in dir: String, _ extensions: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
    }

    /// Every image file under `root/<label>/`, in the order `load` reads them.
    public static func files(_ root: String) throws -> [(person: String, path: String)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(root): no such folder (expected one folder of images per person or class)")
        }
        let fm = FileManager.default
        let classes = try fm.contentsOfDirectory(atPath: root).filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: (root as NSString).appendingPathComponent(name), isDirectory: &d) && d.boolValue
        }.sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        guard !classes.isEmpty else { throw StrataError("\(root): contains no class folders (expected root/<name>/*.png)") }
        var out: [(String, String)] = []
        for cls in classes {
            let dir = (root as NSString).appendingPathComponent(cls)
            let names = try named(in: dir, extensions)
            guard !names.isEmpty else { throw StrataError("\(dir): empty person folder (no .png, .jpg, .webp, .heic, .avif, .pgm or .ppm images)") }
            out += names.map { (cls, (dir as NSString).appendingPathComponent($0)) }
        }
        return out
    }

    /// Loads every image. `size` is (width, height) after resizing (default: the first image's).
    /// Folders are sorted by name with numbers in numeric order (s2 before s10); so are files.
    /// Throws for a missing root, an empty class folder, an unreadable image, or an image
    /// smaller than `minSide` pixels on a side.
    public static func load(_ root: String, channels: Int = 1, size: (Int, Int)? = nil, minSide: Int = 16,
                            transform: ((Image) -> Image)? = nil) throws -> LabeledImages {
        let all = try files(root)
        var classes: [String] = [], labelOf: [String: Int] = [:]
        var target = size
        var pixels: [UInt8] = [], labels: [Int] = [], paths: [String] = []
        for (cls, path) in all {
            if labelOf[cls] == nil { labelOf[cls] = classes.count; classes.append(cls) }
            var img = try Image.load(path)
            guard img.width >= minSide && img.height >= minSide else {
                throw StrataError("\(path): image is \(img.width)x\(img.height), far too small (at least \(minSide)x\(minSide) pixels)")
            }
            img = channels == 1 ? img.grayscale() : img.rgb()
            if let transform { img = transform(img) }
            if target == nil { target = (img.width, img.height) }
            img = img.resized(width: target!.0, height: target!.1)
            // Stored channel-first, like the other datasets.
            let hw = img.width * img.height
            for c in 0..<channels { for p in 0..<hw { pixels.append(img.pixels[p * channels + c]) } }
            labels.append(labelOf[cls]!)
            paths.append(path)
        }
        var d = LabeledImages(pixels: pixels, labels: labels, imageShape: [channels, target!.1, target!.0], classNames: classes)
        d.files = paths
        return d
    }
}

extension LabeledImages {
    /// Per class, `trainPerClass` images (chosen by a seeded shuffle of that class's images, class
    /// by class in order) for training and the rest for testing.
    /// With `atMostHalf`, a class of n images gives at most half of them (rounded up) to training,
    /// so folders with few photos per person still leave some to test.
    public func splitPerClass(trainPerClass k: Int, seed: Int, atMostHalf: Bool = false) -> (train: LabeledImages, test: LabeledImages) {
        var rng = RandomGenerator(seed: seed)
        var tr: [Int] = [], te: [Int] = []
        for c in 0..<classNames.count {
            let idx = labels.indices.filter { labels[$0] == c }
            let perm = rng.permutation(idx.count)
            let k = atMostHalf ? Swift.min(k, (idx.count + 1) / 2) : k
            tr += perm.prefix(k).map { idx[$0] }
            te += perm.dropFirst(k).map { idx[$0] }
        }
        return (subset(tr), subset(te))
    }

    /// Per class, a share `testShare` of its images (rounded, at least one where the class has
    /// two or more, never all) for testing and the rest for training, chosen by a seeded shuffle of
    /// each class in order: the stratified split `strata train` makes of an image folder.
    public func splitPerClass(testShare: Double, seed: Int) -> (train: LabeledImages, test: LabeledImages) {
        precondition(testShare >= 0 && testShare < 1, "splitPerClass: testShare must be in [0, 1), got \(testShare)")
        var rng = RandomGenerator(seed: seed)
        var tr: [Int] = [], te: [Int] = []
        for c in 0..<classNames.count {
            let idx = labels.indices.filter { labels[$0] == c }
            let perm = rng.permutation(idx.count)
            let k = idx.count < 2 || testShare == 0 ? 0 : Swift.min(idx.count - 1, Swift.max(1, Int((Double(idx.count) * testShare).rounded())))
            te += perm.prefix(k).map { idx[$0] }
            tr += perm.dropFirst(k).map { idx[$0] }
        }
        return (subset(tr), subset(te))
    }

    /// The images of the given classes only, relabelled 0..<classes.count in that order.
    public func classes(_ keep: [Int]) -> LabeledImages {
        let map = Dictionary(uniqueKeysWithValues: keep.enumerated().map { ($0.element, $0.offset) })
        let idx = labels.indices.filter { map[labels[$0]] != nil }
        var s = subset(idx)
        s.labels = idx.map { map[labels[$0]]! }
        s.classNames = keep.map { classNames[$0] }
        return s
    }
}
