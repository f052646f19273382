import StrataCore
import StrataNN
import StrataData

extension Module {
    /// Gradient of each image's score for `classes[i]` (default: its predicted class) with
    /// respect to the input, computed in evaluation mode: which pixels the decision is most
    /// sensitive to. Returns the gradient (input's shape) and the classes used.
    ///
    /// ```swift
    /// let (grad, cls) = model.saliency(x)
    /// let heat = grad.abs().max(axis: 1)      // [N, H, W]
    /// ```
    public func saliency(_ x: Tensor, classes: [Int]? = nil) -> (gradient: Tensor, classes: [Int]) {
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        var input = x.detached()
        input.requiresGrad = true
        let logits = self(input)
        let cls = classes ?? logits.argmaxIndices()
        precondition(cls.count == x.shape[0], "saliency: \(cls.count) classes for \(x.shape[0]) inputs")
        let pick = Tensor.oneHot(cls, classes: logits.shape[1])
        (logits * pick).sum().backward()
        return (input.grad!, cls)
    }
}
