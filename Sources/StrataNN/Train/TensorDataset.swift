import StrataCore

/// Ready-made input tensors `[N, ...]` with integer labels, as a batch source.
public struct TensorDataset: BatchSource {
    public let inputs: Tensor
    public let labels: [Int]

    public init(_ inputs: Tensor, labels: [Int]) {
        precondition(inputs.shape.first == labels.count, "TensorDataset: \(inputs.shape) inputs for \(labels.count) labels")
        self.inputs = inputs
        self.labels = labels
    }

    public var count: Int { labels.count }
    public var batchesAreCheap: Bool { true }

    public func batch(_ indices: [Int]) -> Batch {
        Batch(inputs: noGrad { inputs.indexSelect(axis: 0, indices: indices) }, labels: indices.map { labels[$0] }, indices: indices)
    }
}
