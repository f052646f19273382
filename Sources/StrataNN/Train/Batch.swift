import StrataCore

/// One batch: model inputs and their integer class labels.
public struct Batch {
    public let inputs: Tensor
    public let labels: [Int]
    /// Which examples of the dataset are in the batch.
    public let indices: [Int]

    public init(inputs: Tensor, labels: [Int], indices: [Int]) {
        self.inputs = inputs
        self.labels = labels
        self.indices = indices
    }
}

/// Anything that can assemble batches from example indices.
public protocol BatchSource {
    var count: Int { get }
    func batch(_ indices: [Int]) -> Batch
}
