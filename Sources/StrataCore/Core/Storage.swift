import CStrata
import Foundation

/// The float buffer behind a tensor. Buffers come from, and go back to, `BufferPool`, so a
/// training loop that makes the same shapes every step stops allocating after its first step.
@usableFromInline
final class TensorStorage {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// Floats actually allocated (the pool may hand out a somewhat larger cached buffer).
    @usableFromInline let capacity: Int
    /// Bumped by every write through `withUnsafeMutableBufferPointer` and the in-place ops, so
    /// what is derived from the values (`ConvWeightForms`) can tell that it is stale.
    @usableFromInline var version = 0
    /// Derived from the values at some `version` (packed convolution weights); see `ConvWeightForms`.
    var derived: AnyObject?

    @usableFromInline
    init(count: Int) {
        self.count = count
        (self.base, self.capacity) = BufferPool.shared.take(count)
    }

    deinit { BufferPool.shared.give(base, capacity) }
}

/// A cache of freed buffers keyed by size. Freed memory is kept (up to `limitBytes`) instead of
/// being returned to the system, which avoids the page faults of fresh mmap'ed allocations.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    /// Cached bytes above this are freed at once.
    public var limitBytes: Int = 2 << 30
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }

    /// Requests of at least this many floats may take a cached buffer up to twice as large, so
    /// big activations of different layers share memory instead of each keeping their own.
    static let bestFitFloats = 1 << 18

    @usableFromInline
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let n = Swift.max(count, 1)
        pthread_mutex_lock(&lock)
        var key = n
        if free[n]?.isEmpty ?? true, n >= BufferPool.bestFitFloats {
            key = free.keys.filter { $0 > n && $0 <= 2 * n && !(free[$0]!.isEmpty) }.min() ?? n
        }
        if var list = free[key], let p = list.popLast() {
            free[key] = list
            cachedBytes -= key * 4
            pthread_mutex_unlock(&lock)
            return (p, key)
        }
        pthread_mutex_unlock(&lock)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, n * 4) == 0, let raw else {
            fatalError("Strata: out of memory allocating \(n * 4) bytes")
        }
        return (raw.bindMemory(to: Float.self, capacity: n), n)
    }

    @usableFromInline
    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = Swift.max(count, 1)
        pthread_mutex_lock(&lock)
        if cachedBytes + n * 4 <= limitBytes {
            free[n, default: []].append(p)
            cachedBytes += n * 4
            pthread_mutex_unlock(&lock)
            return
        }
        pthread_mutex_unlock(&lock)
        Foundation.free(p)
    }

    /// Frees every cached buffer.
    public func trim() {
        pthread_mutex_lock(&lock)
        let lists = free
        free = [:]
        cachedBytes = 0
        pthread_mutex_unlock(&lock)
        for list in lists.values { for p in list { Foundation.free(p) } }
    }

    /// Bytes currently cached (not in use by any tensor).
    public var cached: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return cachedBytes
    }
}
