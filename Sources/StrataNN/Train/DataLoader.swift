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
///
/// For data-parallel training each of `worldSize` processes makes its loader with its own `rank`
/// (as PyTorch's `DistributedSampler`): every process draws the same seeded order, and process
/// `rank` takes its positions `rank`, `rank + worldSize`, `rank + 2 * worldSize`, ... of it, in
/// batches of `batchSize`. So batch `b` of all the processes together holds the examples of batch
/// `b` of one process with a batch `worldSize` times larger. Every process gets the same number of
/// examples, and so of batches: the order is padded by repeating its first examples up to a
/// multiple of `worldSize` or, with `dropLast`, cut down to one.
public final class DataLoader<Source: BatchSource> {
    public let source: Source
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: Int
    public let dropLast: Bool
    /// Batches assembled ahead of the consumer.
    public let prefetch: Int
    /// This process's index among `worldSize` processes that share the data (0 and 1 alone).
    public let rank: Int
    public let worldSize: Int

    public init(_ source: Source, batchSize: Int, shuffle: Bool = false, seed: Int = 0, dropLast: Bool = false, prefetch: Int = 2,
                rank: Int = 0, worldSize: Int = 1) {
        precondition(batchSize > 0, "DataLoader: batch size must be positive, got \(batchSize)")
        precondition(worldSize > 0 && rank >= 0 && rank < worldSize,
                     "DataLoader: rank \(rank) is not one of \(worldSize) processes (0 ..< worldSize)")
        (self.source, self.batchSize, self.shuffle) = (source, batchSize, shuffle)
        (self.seed, self.dropLast, self.prefetch) = (seed, dropLast, prefetch)
        (self.rank, self.worldSize) = (rank, worldSize)
    }

    /// Examples this process takes per epoch: all of them in one process; across processes their
    /// count divided by `worldSize`, rounded up (the padded order) or, with `dropLast`, down.
    public var shardCount: Int {
        let n = source.count
        guard worldSize > 1 else { return n }
        return dropLast ? n / worldSize : (n + worldSize - 1) / worldSize
    }

    /// Batches per epoch (of this process).
    public var batchCount: Int { dropLast ? shardCount / batchSize : (shardCount + batchSize - 1) / batchSize }

    /// The example order of epoch `e`.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<source.count) }
        var rng = RandomGenerator(seed: UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
        return rng.permutation(source.count)
    }

    /// This process's examples of epoch `e`, in order: the positions `rank`, `rank + worldSize`,
    /// ... of `order(epoch: e)`, which is the same on every process; past its end the positions
    /// wrap to its start. In one process, the order itself.
    public func shard(epoch e: Int) -> [Int] {
        let order = order(epoch: e)
        guard worldSize > 1, !order.isEmpty else { return order }
        return (0..<shardCount).map { order[(rank + $0 * worldSize) % order.count] }
    }

    /// The batches of epoch `e` (of this process's shard), prefetched in the background (made on
    /// the caller's thread when the source's `batchesAreCheap` and there is no transform). A
    /// `transform` (augmentation, say) is applied to each batch on the same background thread, one
    /// batch after the other in order, so a transform that draws from a shared generator draws the
    /// same numbers each run.
    public func epoch(_ e: Int, transform: ((Batch) -> Batch)? = nil) -> Epoch {
        let order = shard(epoch: e)
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
            // A transform (augmentation) is always worth a thread of its own.
            if prefetch > 0 && batches.count > 1 && (transform != nil || !source.batchesAreCheap) {
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
