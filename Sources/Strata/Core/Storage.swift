import CStrata
import Foundation

/// The float buffer behind a tensor. Buffers come from, and go back to, `BufferPool`, so a
/// training loop that makes the same shapes every step stops allocating after its first step.
@usableFromInline
final class TensorStorage {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int

    @usableFromInline
    init(count: Int) {
        self.count = count
        self.base = BufferPool.shared.take(count)
    }

    deinit { BufferPool.shared.give(base, count) }
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

    @usableFromInline
    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = Swift.max(count, 1)
        pthread_mutex_lock(&lock)
        if var list = free[n], let p = list.popLast() {
            free[n] = list
            cachedBytes -= n * 4
            pthread_mutex_unlock(&lock)
            return p
        }
        pthread_mutex_unlock(&lock)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, n * 4) == 0, let raw else {
            fatalError("Strata: out of memory allocating \(n * 4) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: n)
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
