import Foundation
import StrataCore

/// A learning-rate schedule: the rate for a step (or epoch) count, from the base rate.
///
/// ```swift
/// let schedule = LinearWarmup(steps: 500, then: CosineAnnealing(totalSteps: 10_000))
/// opt.learningRate = schedule.learningRate(at: step, base: 1e-3)
/// ```
public protocol LRSchedule {
    func learningRate(at step: Int, base: Float) -> Float
}

/// The base rate throughout.
public struct ConstantLR: LRSchedule {
    public init() {}
    public func learningRate(at step: Int, base: Float) -> Float { base }
}

/// Multiplies the rate by `gamma` every `stepSize` steps (PyTorch's `StepLR`).
public struct StepLR: LRSchedule {
    public let stepSize: Int, gamma: Float
    public init(stepSize: Int, gamma: Float = 0.1) {
        self.stepSize = positive(stepSize, "StepLR: stepSize")
        self.gamma = gamma
    }
    public func learningRate(at step: Int, base: Float) -> Float {
        base * Float(Foundation.pow(Double(gamma), Double(step / stepSize)))
    }
}

/// Half a cosine from the base rate down to `minRate` over `totalSteps`, then `minRate`
/// (PyTorch's `CosineAnnealingLR` without restarts).
public struct CosineAnnealing: LRSchedule {
    public let totalSteps: Int, minRate: Float
    public init(totalSteps: Int, minRate: Float = 0) {
        (self.totalSteps, self.minRate) = (positive(totalSteps, "CosineAnnealing: totalSteps"), minRate)
    }
    public func learningRate(at step: Int, base: Float) -> Float {
        let t = Double(Swift.min(step, totalSteps)) / Double(totalSteps)
        return minRate + (base - minRate) * Float((1 + Foundation.cos(Double.pi * t)) / 2)
    }
}

/// Falls linearly from the base rate to 0 over `totalSteps`, then stays at 0 (the schedule
/// Hugging Face fine-tunes BERT with, after its warm-up).
public struct LinearDecay: LRSchedule {
    public let totalSteps: Int
    public init(totalSteps: Int) { self.totalSteps = positive(totalSteps, "LinearDecay: totalSteps") }
    public func learningRate(at step: Int, base: Float) -> Float {
        base * Float(Swift.max(totalSteps - step, 0)) / Float(totalSteps)
    }
}

/// Rises linearly from `startFactor * base` to `base` over `steps`, then follows `then`
/// (counted from the end of the warm-up).
public struct LinearWarmup: LRSchedule {
    public let steps: Int, startFactor: Float
    public let then: LRSchedule
    public init(steps: Int, startFactor: Float = 0, then: LRSchedule = ConstantLR()) {
        self.steps = steps
        self.startFactor = startFactor
        self.then = then
    }
    public func learningRate(at step: Int, base: Float) -> Float {
        if step < steps {
            return base * (startFactor + (1 - startFactor) * Float(step) / Float(Swift.max(steps, 1)))
        }
        return then.learningRate(at: step - steps, base: base)
    }
}

/// `n`, after stopping with "`what` must be positive" unless it is.
private func positive(_ n: Int, _ what: @autoclosure () -> String) -> Int {
    precondition(n > 0, "\(what()) must be positive")
    return n
}
