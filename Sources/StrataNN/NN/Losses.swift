import CStrata
import Foundation
import StrataCore

/// Mean cross-entropy between logits `[N, C]` and integer class targets, fused with the
/// log-softmax (one pass forward, the gradient `softmax - target` backward).
///
/// - `labelSmoothing` ε mixes the one-hot target with the uniform distribution, as PyTorch does:
///   `(1-ε) * nll + ε/C * Σ_c -log p_c`.
/// - `weights` `[C]` weighs each sample by its class; the mean divides by the summed weights.
///
/// ```swift
/// let loss = crossEntropy(model(x), labels)
/// ```
public func crossEntropy(_ logits: Tensor, _ targets: [Int], labelSmoothing: Float = 0, weights: Tensor? = nil) -> Tensor {
    shapeCheck(logits.rank == 2, "crossEntropy", "logits must be [N, C], got \(fmt(logits.shape))")
    let n = logits.shape[0], c = logits.shape[1]
    shapeCheck(targets.count == n, "crossEntropy", "\(targets.count) targets for logits \(fmt(logits.shape))")
    shapeCheck(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy", "label smoothing \(labelSmoothing) is not in [0, 1]")
    if let weights { shapeCheck(weights.shape == [c], "crossEntropy", "class weights \(fmt(weights.shape)) for logits \(fmt(logits.shape))") }
    for t in targets { shapeCheck(t >= 0 && t < c, "crossEntropy", "target \(t) out of range for \(c) classes") }
    let logp = Tensor(uninitializedShape: logits.shape)
    sk_softmax(n, c, 1, logits.data, logp.data, 1)
    let w = weights?.scalars ?? [Float](repeating: 1, count: c)
    let wSum = w.reduce(0, +)
    var total: Float = 0
    var nll = 0.0, smooth = 0.0
    for i in 0..<n {
        let row = logp.data + i * c
        let wi = w[targets[i]]
        total += wi
        nll -= Double(wi * row[targets[i]])
        if labelSmoothing > 0 {
            var s: Float = 0
            for k in 0..<c { s -= w[k] * row[k] }
            smooth += Double(s)
        }
    }
    let eps = labelSmoothing
    let denom = Swift.max(total, Float.leastNormalMagnitude)
    let loss = Float(((1 - Double(eps)) * nll + Double(eps) / Double(c) * smooth) / Double(denom))
    return Tensor(loss).recorded("crossEntropy", [logits]) { g, _ in
        // d/dx[i,c] = (1-ε) w[y_i] (p_c - [c = y_i]) / W + ε/(C W) (p_c Σ_k w_k - w_c)
        let scale = g.item / denom
        let gx = Tensor(uninitializedShape: [n, c])
        for i in 0..<n {
            let lp = logp.data + i * c, out = gx.data + i * c
            let a = (1 - eps) * w[targets[i]] * scale, b = eps / Float(c) * scale
            for k in 0..<c {
                let p = expf(lp[k])
                out[k] = a * p + b * (p * wSum - w[k])
            }
            out[targets[i]] -= a
        }
        return [gx]
    }
}

/// Targets given as a tensor of class indices (whole numbers).
public func crossEntropy(_ logits: Tensor, _ targets: Tensor, labelSmoothing: Float = 0, weights: Tensor? = nil) -> Tensor {
    crossEntropy(logits, targets.scalars.map { Int($0) }, labelSmoothing: labelSmoothing, weights: weights)
}

/// Mean negative log-likelihood of log-probabilities `[N, C]` (e.g. from `logSoftmax`), weighted
/// by class like `crossEntropy`.
public func nllLoss(_ logProbs: Tensor, _ targets: [Int], weights: Tensor? = nil) -> Tensor {
    shapeCheck(logProbs.rank == 2 && logProbs.shape[0] == targets.count, "nllLoss",
               "log-probabilities \(fmt(logProbs.shape)) for \(targets.count) targets")
    let picked = logProbs.gather(axis: 1, index: Tensor(targets.map(Float.init), shape: [targets.count, 1])).reshape([targets.count])
    guard let weights else { return -picked.mean() }
    let w = Tensor(targets.map { weights.scalars[$0] })
    return -(picked * w).sum() / w.sum().item
}

/// Mean squared error.
public func mseLoss(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    shapeCheck(prediction.shape == target.shape, "mseLoss", "prediction \(fmt(prediction.shape)) and target \(fmt(target.shape)) differ")
    return (prediction - target).square().mean()
}

/// Mean binary cross-entropy on logits, computed stably:
/// `max(x, 0) - x t + log(1 + exp(-|x|))`; `posWeight` scales the positive term (PyTorch's
/// `pos_weight`).
public func bceWithLogits(_ logits: Tensor, _ targets: Tensor, posWeight: Tensor? = nil) -> Tensor {
    shapeCheck(logits.shape == targets.shape, "bceWithLogits", "logits \(fmt(logits.shape)) and targets \(fmt(targets.shape)) differ")
    let softplusNeg = (-logits.abs()).exp().add1Log() + (-logits).relu()   // log(1 + exp(-x))
    guard let posWeight else { return ((1 - targets) * logits + softplusNeg).mean() }
    let coef = (posWeight - 1) * targets + 1
    return ((1 - targets) * logits + coef * softplusNeg).mean()
}

extension Tensor {
    /// log(1 + x) for x >= 0 (used by the stable losses).
    fileprivate func add1Log() -> Tensor { (self + 1).log() }
}

/// Share of rows whose largest logit is at the target class.
public func accuracy(_ logits: Tensor, _ targets: [Int]) -> Float {
    let pred = logits.argmaxIndices()
    guard !targets.isEmpty else { return 0 }
    return Float(zip(pred, targets).filter { $0 == $1 }.count) / Float(targets.count)
}
