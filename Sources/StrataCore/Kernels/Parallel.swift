import CStrata

/// Runs `body(i)` for `i` in `0..<n` on Strata's thread pool; the caller takes part.
/// Nested calls run serially, so a body may itself use parallel kernels safely.
///
/// ```swift
/// parallelFor(images.count) { i in process(images[i]) }
/// ```
@inlinable
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 { body(0); return }
    withoutActuallyEscaping(body) { fn in
        var box = fn
        withUnsafeMutablePointer(to: &box) { ctx in
            strata_parallel_for(n, { raw, i in
                raw!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
            }, ctx)
        }
    }
}
