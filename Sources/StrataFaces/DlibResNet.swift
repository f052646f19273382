import Foundation
import StrataCore
import StrataNN

/// What every face network gives: unit-length embeddings of face images (`[N, C, H, W]`, already
/// cut and normalised), with the mirror image averaged in. `FaceNet` (trained by Strata) and
/// `DlibResNet` (dlib's pretrained network) both are.
public protocol FaceEmbeddingNetwork: Module {
    /// Length of an embedding.
    var embeddingSize: Int { get }
    /// One example's shape, [C, H, W].
    var inputShape: [Int] { get }
    /// The embedding before normalisation (default: the module's output).
    func features(_ x: Tensor) -> Tensor
    /// L2-normalised embeddings of the images and their mirror images, summed (evaluation mode).
    func embedding(_ x: Tensor) -> Tensor
    /// The same over several views of the same images, all summed before normalising.
    func embedding(views: [Tensor]) -> Tensor
}

extension FaceEmbeddingNetwork {
    public func features(_ x: Tensor) -> Tensor { self(x) }

    public func embedding(_ x: Tensor) -> Tensor { embedding(views: [x]) }

    public func embedding(views: [Tensor]) -> Tensor {
        precondition(!views.isEmpty, "embedding(views:): no views")
        // Switching modes walks every submodule: only when the network is not in evaluation mode.
        let wasTraining = isTraining
        if wasTraining { eval() }
        defer { if wasTraining { train(true) } }
        // Every view and its mirror image of a few images in one pass through the network; at most
        // `faceEmbeddingPassImages` images a pass, so activations do not grow with the set.
        return noGrad {
            let n = views[0].shape[0]
            let per = Swift.max(1, faceEmbeddingPassImages / (2 * views.count))
            var parts: [Tensor] = []
            for start in stride(from: 0, to: n, by: per) {
                let m = Swift.min(per, n - start)
                let vs = n <= per ? views : views.map { $0.slice(axis: 0, start: start, end: start + m) }
                let f = features(Tensor.concat(vs + vs.map { $0.flippedHorizontally() }, axis: 0))   // [2V*m, D]
                parts.append(l2Normalized(f.reshape([2 * views.count, m, f.shape[1]]).sum(axis: 0)))
            }
            return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
        }
    }
}

/// Images (views and mirror images counted) a face network embeds in one pass: 64 measured
/// fastest on LFW pairs with 5 views, and holds a tenth of the memory of 2,560 at once.
public let faceEmbeddingPassImages = 64

/// A per-channel scale and shift (dlib's `affine` layer: a BatchNorm folded into its statistics).
public final class ChannelAffine: Module {
    public let weight: Parameter
    public let bias: Parameter

    public init(_ channels: Int) {
        weight = Parameter(Tensor.ones([channels]))
        bias = Parameter(Tensor.zeros([channels]))
    }

    // x [N, C, H, W] -> [N, C, H, W]
    public override func forward(_ x: Tensor) -> Tensor {
        let c = weight.value.count
        return x * weight.value.reshape([1, c, 1, 1]) + bias.value.reshape([1, c, 1, 1])
    }
}

/// One residual block of dlib's face ResNet: conv 3x3 (stride 1, or 2 without padding), affine,
/// ReLU, conv 3x3, affine, added to the input (average-pooled 2x2 when downsampling), ReLU.
/// Where the two differ in size (channels, or a row and column lost to the unpadded stride),
/// dlib adds them as if the smaller were padded with zeros at its end; so does this block.
public final class DlibResidual: Module {
    public let conv1: Conv2D, affine1: ChannelAffine, conv2: Conv2D, affine2: ChannelAffine
    public let downsample: Bool

    public init(_ cin: Int, _ cout: Int, downsample: Bool) {
        self.downsample = downsample
        conv1 = Conv2D(cin, cout, kernelSize: 3, stride: downsample ? 2 : 1, padding: downsample ? 0 : 1)
        affine1 = ChannelAffine(cout)
        conv2 = Conv2D(cout, cout, kernelSize: 3, padding: 1)
        affine2 = ChannelAffine(cout)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let y = affine2(conv2(affine1(conv1(x)).relu()))
        let skip = downsample ? avgPool2d(x, kernelSize: 2, stride: 2) : x
        return DlibResidual.zeroPaddedSum(y, skip).relu()
    }

    /// a + b, each padded with zeros at the end of every dimension to the larger size.
    static func zeroPaddedSum(_ a: Tensor, _ b: Tensor) -> Tensor {
        guard a.shape != b.shape else { return a + b }
        let shape = zip(a.shape, b.shape).map { Swift.max($0, $1) }
        func grown(_ t: Tensor) -> Tensor { t.shape == shape ? t : t.pad(zip(t.shape, shape).map { (0, $1 - $0) }) }
        return grown(a) + grown(b)
    }
}

/// dlib's pretrained face-recognition network (`dlib_face_recognition_resnet_model_v1`, the
/// network of face_recognition): a 150x150 RGB face chip, (pixel - channel mean) / 256, to 128
/// numbers; 29 convolutions, 5.6 M parameters, 99.38 % on LFW by dlib's own measure. Strata
/// runs it on its own ops; `Tools/convert_dlib_face_model.py` writes its weights under these
/// names and `strata faces import-dlib` makes a face model of them.
///
/// ```swift
/// let net = DlibResNet()
/// try net.loadStateDict(try Safetensors.read("dlib-weights.safetensors").0)
/// let e = net.embedding(x)          // x [N, 3, 150, 150] -> [N, 128], unit length
/// ```
public final class DlibResNet: Module, BuildableModule, FaceEmbeddingNetwork {
    public let conv: Conv2D, affine: ChannelAffine
    public let blocks: [DlibResidual]
    public let fc: Linear
    public let embeddingSize = 128
    public let inputShape = [3, 150, 150]

    /// The stages of dnn_face_recognition_ex.cpp from the input: width, downsampling first block, blocks.
    static let stages = [(32, false, 3), (64, true, 4), (128, true, 3), (256, true, 3), (256, true, 1)]

    public override init() {
        conv = Conv2D(3, 32, kernelSize: 7, stride: 2)
        affine = ChannelAffine(32)
        var b: [DlibResidual] = [], cin = 32
        for (width, down, count) in DlibResNet.stages {
            for j in 0..<count {
                b.append(DlibResidual(cin, width, downsample: down && j == 0))
                cin = width
            }
        }
        blocks = b
        fc = Linear(256, 128, bias: false)
    }

    // x [N, 3, 150, 150] -> [N, 128] (not normalised; `embedding` normalises)
    public override func forward(_ x: Tensor) -> Tensor {
        var h = maxPool2d(affine(conv(x)).relu(), kernelSize: 3, stride: 2)   // [N, 32, 35, 35]
        for b in blocks { h = b(h) }                                          // [N, 256, 2, 2]
        return fc(h.mean(axes: [2, 3]))
    }

    public override var config: [String: Any] { [:] }

    public static func build(_ spec: [String: Any]) throws -> Module { DlibResNet() }

    /// dlib's input layer: channel means subtracted, divided by 256 (pixels 0-255).
    public static func normalization(means: [Float]) -> Normalization {
        Normalization(scale: 1, mean: means, std: [256, 256, 256])
    }
}

extension FaceModel {
    /// Where dlib's 150x150 face chip (5-point alignment, padding 0.25) falls on an LFW-framed
    /// photo: the median over 596 `lfw_train` photos of `dlib.get_face_chip_details` after dlib's
    /// own detector and landmarks (centre 0.505, 0.539 of the photo; side 0.458; rotation within
    /// ±9° for 80 % of them, which this square box ignores).
    public static let dlibChip = FaceCrop(centerX: 0.505, centerY: 0.539, side: 0.458, size: 150, context: 1)

    /// The default "same person" cosine distance of `dlib(weights:threshold:)`.
    public static let dlibThreshold: Float = 0.1

    /// A face model of dlib's pretrained ResNet, from the weights `Tools/convert_dlib_face_model.py`
    /// wrote. Its faces are cut like dlib's chips from LFW-framed photos (detection first frames
    /// any photo so); `threshold` is the cosine distance below which two faces are one person.
    ///
    /// ```swift
    /// var fm = try FaceModel.dlib(weights: "dlib-weights.safetensors", threshold: 0.1)
    /// try fm.save(to: "faces-dlib.safetensors")
    /// ```
    public static func dlib(weights path: String, threshold: Float) throws -> FaceModel {
        let (tensors, meta) = try Safetensors.read(path)
        guard meta["format"] == "dlib_face_recognition_resnet_model_v1" else {
            throw StrataError("\(path): not dlib's face ResNet converted by Tools/convert_dlib_face_model.py (its metadata has no format \"dlib_face_recognition_resnet_model_v1\")")
        }
        guard let m = meta["channel_means"], let means = try? JSONDecoder().decode([Float].self, from: Data(m.utf8)),
              means.count == 3, means.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 255 }) else {
            throw StrataError("\(path): the channel means in its metadata are missing or not three values in 0...255")
        }
        guard threshold.isFinite && threshold > 0 && threshold < 2 else {
            throw StrataError("the distance threshold must be in (0, 2), got \(threshold)")
        }
        let net = Tensor.withoutRandomInit { DlibResNet() }
        try net.loadStateDict(tensors, source: path)
        for (name, p) in net.namedStates() where !p.value.scalars.allSatisfy({ $0.isFinite }) {
            throw StrataError("\(path): \(name) holds values that are not finite")
        }
        net.eval()
        var info = ModelInfo(model: net, classNames: ["face"], inputShape: net.inputShape, normalization: DlibResNet.normalization(means: means))
        info.recipe = "dlib_face_recognition_resnet_model_v1 (pretrained by dlib; converted from \(meta["source"] ?? "dlib's file"))"
        var fm = FaceModel(net: net, info: info, threshold: threshold)
        fm.crop = dlibChip
        return fm
    }
}

extension FaceModel {
    /// The equal-error-rate distance of this model over every pair of photos of the first
    /// `people` people of an LFW-style folder that `faces pairs` does *not* hold out (the same
    /// `fraction` and `holdoutSeed`), so a check on the held-out people stays unseen. Photos are
    /// LFW-framed, cut with the model's fixed box.
    public func calibratedThreshold(folder: String, people: Int, fraction: Double = 0.1, holdoutSeed: Int = 0) throws -> (eer: Double, threshold: Float, photos: Int, people: Int) {
        let names = try FacePairs.people(folder: folder)
        let held = Set(FacePairs.heldOutPeople(names, fraction: fraction, seed: holdoutSeed))
        let chosen = Array(names.filter { !held.contains($0) }.prefix(people))
        guard chosen.count >= 2 else { throw StrataError("\(folder): fewer than 2 people outside the held-out share to calibrate on") }
        var paths: [String] = [], labels: [Int] = []
        for (k, name) in chosen.enumerated() {
            let dir = (folder as NSString).appendingPathComponent(name)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
            for f in files { paths.append((dir as NSString).appendingPathComponent(f)); labels.append(k) }
        }
        let e = try embedFiles(paths)
        let (eer, t) = FaceEvaluation.equalErrorPoint(scorer.distances(e, e), labels)
        return (eer, t, paths.count, chosen.count)
    }
}
