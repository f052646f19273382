import StrataCore

/// One batch: model inputs and their integer class labels, and dense targets for losses that
/// are not on classes (a detector's per-cell boxes, say), as torchvision's detection batches carry.
public struct Batch {
    public let inputs: Tensor
    public let labels: [Int]
    /// Which examples of the dataset are in the batch.
    public let indices: [Int]
    public let targets: Tensor?

    public init(inputs: Tensor, labels: [Int], indices: [Int], targets: Tensor? = nil) {
        self.inputs = inputs
        self.labels = labels
        self.indices = indices
        self.targets = targets
    }
}

/// Anything that can assemble batches from example indices.
public protocol BatchSource {
    var count: Int { get }
    func batch(_ indices: [Int]) -> Batch
    /// True where a batch is a copy out of memory: then the training thread makes it itself, as
    /// handing it over from a prefetching thread costs more (and on a machine whose cores all
    /// train, that thread takes turns with them). Default false: batches are prefetched.
    var batchesAreCheap: Bool { get }
}

extension BatchSource {
    public var batchesAreCheap: Bool { false }
}
