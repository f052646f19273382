import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// How a face model compares two embeddings.
public enum FaceScore: String, CaseIterable, Codable {
    /// Cosine distance, 1 - cos.
    case cosine
    /// Symmetric score normalisation (S-norm) against the model's training people: the cosine of
    /// a pair is measured against how alike each photo is to every training identity (the class
    /// centres its head learned), `z = ((s - mu_a) / sd_a + (s - mu_b) / sd_b) / 2`. Photos that
    /// resemble everybody (blurred, dark, a common pose) stop passing for one another. Reported
    /// as a distance on the cosine scale, `1 - (mu + sd * z)` with the centres' own mean and
    /// spread `mu`, `sd`, so thresholds read like cosine distances.
    case snorm
}

/// Distances between embeddings of one face model under its `FaceScore`.
///
/// ```swift
/// let scorer = model.scorer
/// let d = scorer.distances(e, e)                   // [N][N]
/// let same = scorer.distance(a, b) <= model.threshold
/// ```
public struct FaceScorer {
    /// Unit class centres `[P, D]` in the layout of the model's embeddings (nil: plain cosine).
    public let centres: Tensor?
    let globalMean: Float, globalSpread: Float

    /// Plain cosine distances.
    public static let cosine = FaceScorer(centres: nil)

    /// S-norm against `centres` (unit rows); the scale constants come from the centres themselves.
    public init(centres: Tensor?) {
        self.centres = centres
        guard let c = centres, c.shape[0] > 2 else { (globalMean, globalSpread) = (0, 1); return }
        let p = c.shape[0]
        let (m, s) = FaceScorer.statistics(noGrad { c.matmul(c.T) }, excludingDiagonal: true)
        (globalMean, globalSpread) = (m.reduce(0, +) / Float(p), s.reduce(0, +) / Float(p))
    }

    /// Per row of cosines `[N, P]`: mean and standard deviation (the diagonal left out when asked).
    static func statistics(_ cos: Tensor, excludingDiagonal: Bool = false) -> ([Float], [Float]) {
        let (n, p) = (cos.shape[0], cos.shape[1]), v = cos.scalars
        var means = [Float](repeating: 0, count: n), sds = means
        for i in 0..<n {
            var sum = 0.0, sq = 0.0, count = 0.0
            for j in 0..<p where !(excludingDiagonal && i == j) {
                let x = Double(v[i * p + j])
                sum += x; sq += x * x; count += 1
            }
            let m = sum / count
            means[i] = Float(m)
            sds[i] = Float(Swift.max(sq / count - m * m, 1e-12).squareRoot())
        }
        return (means, sds)
    }

    /// Cohort statistics of each embedding (rows of `e`).
    func cohort(_ e: Tensor) -> ([Float], [Float])? {
        centres.map { c in FaceScorer.statistics(noGrad { e.matmul(c.T) }) }
    }

    /// Distances between every row of `a` `[N, D]` and every row of `b` `[M, D]` (unit rows).
    public func distances(_ a: Tensor, _ b: Tensor) -> [[Float]] {
        let cos = noGrad { a.matmul(b.T) }, (n, m) = (a.shape[0], b.shape[0]), v = cos.scalars
        guard let (ma, sa) = cohort(a), let (mb, sb) = cohort(b) else {
            return (0..<n).map { i in (0..<m).map { 1 - v[i * m + $0] } }
        }
        return (0..<n).map { i in (0..<m).map { j in snormDistance(v[i * m + j], ma[i], sa[i], mb[j], sb[j]) } }
    }

    /// The S-norm distance of cosine `s` between photos with cohort means and spreads `ma, sa` and `mb, sb`.
    private func snormDistance(_ s: Float, _ ma: Float, _ sa: Float, _ mb: Float, _ sb: Float) -> Float {
        let z = ((s - ma) / sa + (s - mb) / sb) / 2
        return 1 - (globalMean + globalSpread * z)
    }

    /// Distances of the listed pairs of rows of `e` `[N, D]` (unit rows), without the `N x N` matrix.
    public func distances(_ e: Tensor, pairs: [(Int, Int)]) -> [Float] {
        let d = e.shape[1], v = e.scalars, stats = cohort(e)
        return pairs.map { i, j in
            var s: Float = 0
            for k in 0..<d { s += v[i * d + k] * v[j * d + k] }
            guard let (m, sd) = stats else { return 1 - s }
            return snormDistance(s, m[i], sd[i], m[j], sd[j])
        }
    }

    /// The distance between two embeddings.
    public func distance(_ a: [Float], _ b: [Float]) -> Float {
        distances(Tensor(a, shape: [1, a.count]), Tensor(b, shape: [1, b.count]))[0][0]
    }
}

extension FaceModel {
    /// How this model compares embeddings (`face_score` in the model file; cosine when absent).
    public var score: FaceScore {
        get { info.extra["face_score"].flatMap(FaceScore.init) ?? .cosine }
        set { info.extra["face_score"] = newValue == .cosine ? nil : newValue.rawValue }
    }

    /// Unit class centres of the training people in the layout of `embed`'s output: each head's
    /// rows normalised, an ensemble's members side by side over sqrt(count). Nil when members
    /// were trained on different people.
    public var classCentres: Tensor? {
        let nets = networks.compactMap { $0.net as? FaceNet }
        guard nets.count == networks.count, Set(nets.map(\.classes)).count == 1 else { return nil }
        return FaceEnsemble.join(nets.map { l2Normalized($0.head.weight.value.detached()) })
    }

    /// The scorer of `score` (S-norm falls back to cosine without shared class centres).
    public var scorer: FaceScorer { scorer(score) }

    /// The scorer of another score than the model's own, e.g. to compare the two.
    public func scorer(_ s: FaceScore) -> FaceScorer {
        s == .snorm ? FaceScorer(centres: classCentres) : .cosine
    }
}
