import Foundation
import StrataCore

/// Batches from a `BatchSource`, optionally shuffled, assembled on a background thread while the
/// model trains on the previous batch.
///
/// Shuffling is seeded per epoch: the order of epoch `e` depends only on (`seed`, `e`), so a run
/// resumed at epoch `e` sees the same batches as an uninterrupted one.
///
/// ```swift
/// let loader = DataLoader(train, batchSize: 64, shuffle: true, seed: 0)
/// for batch in loader.epoch(0) { ... }     // 938 batches, the last one holds 32 images
/// ```
public final class DataLoader<Source: BatchSource> {
    public let source: Source
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: Int
    public let dropLast: Bool
    /// Batches assembled ahead of the consumer.
    public let prefetch: Int

    public init(_ source: Source, batchSize: Int, shuffle: Bool = false, seed: Int = 0, dropLast: Bool = false, prefetch: Int = 2) {
        precondition(batchSize > 0, "DataLoader: batch size must be positive, got \(batchSize)")
        (self.source, self.batchSize, self.shuffle) = (source, batchSize, shuffle)
        (self.seed, self.dropLast, self.prefetch) = (seed, dropLast, prefetch)
    }

    /// Batches per epoch.
    public var batchCount: Int { dropLast ? source.count / batchSize : (source.count + batchSize - 1) / batchSize }

    /// The example order of epoch `e`.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<source.count) }
        var rng = RandomGenerator(seed: UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
        return rng.permutation(source.count)
    }

    /// The batches of epoch `e`, prefetched in the background. A `transform` (augmentation, say)
    /// is applied to each batch on the same background thread, one batch after the other in
    /// order, so a transform that draws from a shared generator draws the same numbers each run.
    public func epoch(_ e: Int, transform: ((Batch) -> Batch)? = nil) -> Epoch {
        let order = order(epoch: e)
        let ranges = (0..<batchCount).map { b in Array(order[(b * batchSize)..<Swift.min((b + 1) * batchSize, order.count)]) }
        return Epoch(source: source, batches: ranges, prefetch: prefetch, transform: transform)
    }

    /// An epoch of given batches (lists of example indices, e.g. balanced per class: PyTorch's
    /// `batch_sampler`), prefetched and transformed as `epoch(_:transform:)` does; `batchSize`,
    /// `shuffle` and `dropLast` do not apply.
    ///
    /// ```swift
    /// let pairs = loader.epoch(batches: [[0, 1], [2, 3]])   // two batches of two examples
    /// ```
    public func epoch(batches: [[Int]], transform: ((Batch) -> Batch)? = nil) -> Epoch {
        Epoch(source: source, batches: batches, prefetch: prefetch, transform: transform)
    }

    /// One pass over the data; iterate it once.
    public final class Epoch: Sequence, IteratorProtocol {
        private let source: Source
        private let batches: [[Int]]
        private let transform: ((Batch) -> Batch)?
        private var position = 0
        private let queue: PrefetchQueue<Batch>?

        init(source: Source, batches: [[Int]], prefetch: Int, transform: ((Batch) -> Batch)? = nil) {
            self.source = source
            self.batches = batches
            self.transform = transform
            if prefetch > 0 && batches.count > 1 {
                let q = PrefetchQueue<Batch>(capacity: prefetch)
                queue = q
                let src = source, bs = batches
                let thread = Thread {
                    for b in bs {
                        if q.isCancelled { break }
                        let batch = src.batch(b)
                        q.put(transform.map { $0(batch) } ?? batch)
                    }
                }
                thread.stackSize = 1 << 20
                thread.start()
            } else {
                queue = nil
            }
        }

        deinit { queue?.cancel() }

        public func next() -> Batch? {
            guard position < batches.count else { return nil }
            defer { position += 1 }
            if let queue { return queue.take() }
            let batch = source.batch(batches[position])
            return transform.map { $0(batch) } ?? batch
        }

        public var count: Int { batches.count }

        /// Examples in all the batches of the epoch.
        public var exampleCount: Int { batches.reduce(0) { $0 + $1.count } }
    }
}

/// A bounded single-producer, single-consumer queue.
final class PrefetchQueue<T>: @unchecked Sendable {
    private var items: [T] = []
    private let lock = NSCondition()
    private let capacity: Int
    private(set) var isCancelled = false

    init(capacity: Int) { self.capacity = capacity }

    func put(_ item: T) {
        lock.lock()
        while items.count >= capacity && !isCancelled { lock.wait() }
        if !isCancelled { items.append(item) }
        lock.broadcast()
        lock.unlock()
    }

    func take() -> T {
        lock.lock()
        while items.isEmpty { lock.wait() }
        let item = items.removeFirst()
        lock.broadcast()
        lock.unlock()
        return item
    }

    func cancel() {
        lock.lock()
        isCancelled = true
        items.removeAll()
        lock.broadcast()
        lock.unlock()
    }
}
