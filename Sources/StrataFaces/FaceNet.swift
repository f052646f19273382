import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// How a face network is trained and what its head computes.
public enum FaceLoss: String, CaseIterable, Codable {
    /// Softmax cross-entropy over the training identities; the 128-d layer is the embedding.
    case softmax
    /// Additive cosine margin (CosFace): s * (cos θ_y - m) for the true class.
    case cosface
    /// Additive angular margin (ArcFace): s * cos(θ_y + m).
    case arcface
    /// Triplet loss with batch-hard mining on L2-normalised embeddings (no class head used).
    case triplet
}

/// A face network: a feature extractor, a linear layer to the embedding with BatchNorm1d, then a
/// head over the training identities.
///
/// - Plain (no `blocks`): one [conv 3x3 (no bias), BatchNorm, ReLU, max pool 2] block per width
///   (three in the reference) and dropout; parameter names (`embed.*`, `head.*`) follow the PyTorch reference in
///   ../shared/bench/reference/faces_att.py.
/// - Residual (`blocks` per stage): a 3x3 conv stem, then per stage `blocks[i]` ResNet basic
///   blocks of `widths[i]` channels, the first with stride 2; BatchNorm and dropout before the
///   embedding layer (the "BN-Dropout-FC-BN" output of ArcFace's networks).
///
/// ```swift
/// let net = FaceNet(classes: 30, loss: .cosface)
/// let e = net.embedding(x)          // [N, 128], L2-normalised, mirror-averaged
/// let wild = FaceNet(classes: 988, loss: .cosface, widths: [32, 64, 128, 256], inputSize: (64, 64),
///                    channels: 3, blocks: [1, 1, 1, 1])
/// ```
public final class FaceNet: Module, BuildableModule {
    public let embed: Sequential
    public let head: Linear
    public let classes: Int, embeddingSize: Int, widths: [Int]
    /// Input channels (1 grey, 3 RGB) and residual blocks per stage (empty: the plain network).
    public let channels: Int, blocks: [Int]
    /// Input height and width.
    public let inputSize: (Int, Int)
    public let loss: FaceLoss
    /// Scale and margin of the cosine heads.
    public let scale: Float, margin: Float

    public init(classes: Int, loss: FaceLoss = .softmax, embedding: Int = 128, widths: [Int] = [16, 32, 64],
                inputSize: (Int, Int) = (56, 46), scale: Float? = nil, margin: Float? = nil, dropout: Float = 0.3,
                channels: Int = 1, blocks: [Int] = []) {
        precondition(blocks.isEmpty ? !widths.isEmpty : widths.count == blocks.count,
                     "FaceNet: one width per block (plain) or per stage (residual), got widths \(widths), blocks \(blocks)")
        (self.classes, self.embeddingSize, self.widths, self.inputSize) = (classes, embedding, widths, inputSize)
        (self.loss, self.channels, self.blocks) = (loss, channels, blocks)
        self.scale = scale ?? 16
        self.margin = margin ?? (loss == .arcface ? 0.3 : loss == .cosface ? 0.2 : 0.2)
        var layers: [Module] = []
        var cin = channels
        let down = 1 << (blocks.isEmpty ? widths.count : blocks.count)
        if blocks.isEmpty {
            for w in widths {
                layers += [Conv2D(cin, w, kernelSize: 3, padding: 1, bias: false), BatchNorm2d(w), ReLU(), MaxPool2D(2)]
                cin = w
            }
            layers += [Flatten(), Dropout(dropout)]
        } else {
            layers += [Conv2D(cin, widths[0], kernelSize: 3, padding: 1, bias: false), BatchNorm2d(widths[0]), ReLU()]
            cin = widths[0]
            for (w, n) in zip(widths, blocks) {
                for b in 0..<n {
                    layers.append(ResidualBlock(cin, w, stride: b == 0 ? 2 : 1))
                    cin = w
                }
            }
            layers += [BatchNorm2d(cin), Dropout(dropout), Flatten()]
        }
        let fh = inputSize.0 / down, fw = inputSize.1 / down
        layers += [Linear(cin * fh * fw, embedding), BatchNorm1d(embedding)]
        embed = Sequential(layers)
        head = Linear(embedding, classes, bias: loss == .softmax)
    }

    /// Class scores: the linear head, or s * cosine similarity to each class centre.
    public override func forward(_ x: Tensor) -> Tensor {
        let f = embed(x)
        return loss == .softmax ? head(f) : cosines(f) * scale
    }

    func cosines(_ f: Tensor) -> Tensor {
        l2Normalized(f).matmul(l2Normalized(head.weight.value).T)
    }

    /// Training loss for a batch (margins need the labels).
    public func trainingLoss(_ x: Tensor, _ labels: [Int], tripletMargin: Float = 0.2) -> Tensor {
        trainingLossAndScores(x, labels, tripletMargin: tripletMargin).loss
    }

    /// Training loss for a batch, and the class scores of `forward` it came from (nil for the
    /// triplet loss, which uses no head): the `Trainer`'s `batchLoss` for a face network.
    public func trainingLossAndScores(_ x: Tensor, _ labels: [Int], tripletMargin: Float = 0.2) -> (loss: Tensor, scores: Tensor?) {
        let f = embed(x)
        switch loss {
        case .softmax:
            let scores = head(f)
            return (crossEntropy(scores, labels), scores)
        case .cosface, .arcface:
            let cos = cosines(f)
            return (marginCrossEntropy(cosines: cos, labels: labels), noGrad { cos * scale })
        case .triplet:
            return (batchHardTriplet(l2Normalized(f), labels, margin: tripletMargin), nil)
        }
    }

    /// The loss of class scores from `forward` (training mode): cross-entropy, with the CosFace or
    /// ArcFace margin taken off the true class's cosine.
    public func marginLoss(scores: Tensor, labels: [Int]) -> Tensor {
        switch loss {
        case .softmax, .triplet:
            return crossEntropy(scores, labels)
        case .cosface:
            // s (cos θ - m) for the true class, written on the scores s cos θ.
            return crossEntropy(scores - Tensor.oneHot(labels, classes: classes) * (scale * margin), labels)
        case .arcface:
            return marginCrossEntropy(cosines: scores / scale, labels: labels)
        }
    }

    /// Cross-entropy of s * cos θ with the margin on the true class: s (cos θ - m) for CosFace,
    /// s cos(θ + m) for ArcFace.
    func marginCrossEntropy(cosines cos: Tensor, labels: [Int]) -> Tensor {
        let target: Tensor
        if loss == .cosface {
            target = cos - margin
        } else {
            // cos(θ + m) = cos θ cos m - sin θ sin m, falling back to cos θ - m sin m where θ + m > π.
            let sin = (1 - cos * cos).maximum(Tensor(1e-9)).sqrt()
            let arc = cos * Float(Foundation.cos(Double(margin))) - sin * Float(Foundation.sin(Double(margin)))
            let fallback = cos - margin * Float(Foundation.sin(Double(margin)))
            target = Tensor.where(cos.gt(-Float(Foundation.cos(Double(margin)))), arc, fallback)
        }
        return crossEntropy(Tensor.where(Tensor.oneHot(labels, classes: classes), target, cos) * scale, labels)
    }

    public override var config: [String: Any] {
        ["classes": classes, "embedding": embeddingSize, "widths": widths, "input": [inputSize.0, inputSize.1],
         "loss": loss.rawValue, "s": Double(scale), "m": Double(margin), "channels": channels, "blocks": blocks]
    }

    /// Rebuilds the layer from its architecture entry (its `config`); found by `ModuleRegistry` by name.
    public static func build(_ s: [String: Any]) throws -> Module {
        guard let lossName = s["loss"] as? String, let loss = FaceLoss(rawValue: lossName) else {
            throw StrataError("architecture: FaceNet needs a \"loss\" (softmax, cosface, arcface or triplet)")
        }
        // Read from a file: every size is checked before the network is built from it.
        let input = try ModuleRegistry.ints(s, "input", [56, 46])
        let widths = try ModuleRegistry.ints(s, "widths", [16, 32, 64])
        let blocks = s["blocks"] == nil || (s["blocks"] as? [Any])?.isEmpty == true ? [] : try ModuleRegistry.ints(s, "blocks", [])
        let (classes, embedding) = (try ModuleRegistry.int(s, "classes"), try ModuleRegistry.int(s, "embedding", 128))
        let channels = try ModuleRegistry.int(s, "channels", 1)
        let stages = blocks.isEmpty ? widths.count : blocks.count
        guard input.count == 2, blocks.isEmpty || blocks.count == widths.count, stages <= 12,
              input[0] >> stages >= 1, input[1] >> stages >= 1, blocks.allSatisfy({ $0 <= 64 }) else {
            throw StrataError("architecture: FaceNet with input \(input), widths \(widths) and blocks \(blocks) does not fit together")
        }
        for (a, b) in zip([channels] + widths, widths) { try ModuleRegistry.weights(s, [b, a, 3, 3]) }
        try ModuleRegistry.weights(s, [widths.last!, input[0] >> stages, input[1] >> stages, embedding])
        try ModuleRegistry.weights(s, [classes, embedding])
        return FaceNet(classes: classes, loss: loss, embedding: embedding, widths: widths, inputSize: (input[0], input[1]),
                       scale: ModuleRegistry.float(s, "s", 16), margin: ModuleRegistry.float(s, "m", 0.2),
                       channels: channels, blocks: blocks)
    }
}

extension FaceNet: FaceEmbeddingNetwork {
    public var inputShape: [Int] { [channels, inputSize.0, inputSize.1] }
    /// The embedding layer's output (`forward` goes on to the class head).
    public func features(_ x: Tensor) -> Tensor { embed(x) }
}

/// Rows divided by their L2 norm.
public func l2Normalized(_ x: Tensor, eps: Float = 1e-12) -> Tensor {
    x / (x.square().sum(axes: [-1], keepDims: true) + eps).sqrt()
}

/// Triplet loss with batch-hard mining (Hermans et al.): for each anchor, the farthest image of
/// the same identity and the closest of another, `mean(max(0, d_pos - d_neg + margin))` on
/// Euclidean distances of L2-normalised embeddings. Every identity in the batch needs 2+ images.
public func batchHardTriplet(_ e: Tensor, _ labels: [Int], margin: Float) -> Tensor {
    let n = labels.count
    let sq = e.square().sum(axes: [1], keepDims: true)
    let d2 = (sq + sq.T - e.matmul(e.T) * 2).maximum(Tensor(1e-12))
    let d = d2.sqrt()
    var pos = [Float](repeating: 0, count: n * n), neg = pos
    for i in 0..<n { for j in 0..<n {
        if i != j && labels[i] == labels[j] { pos[i * n + j] = 1 }
        if labels[i] != labels[j] { neg[i * n + j] = 1 }
    } }
    let hardestPos = Tensor.where(Tensor(pos, shape: [n, n]), d, Tensor(-1e9)).max(axis: 1)
    let hardestNeg = Tensor.where(Tensor(neg, shape: [n, n]), d, Tensor(1e9)).min(axis: 1)
    return (hardestPos - hardestNeg + margin).relu().mean()
}
