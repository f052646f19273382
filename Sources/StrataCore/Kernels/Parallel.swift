import CStrata

/// Runs `body(i)` for `i` in `0..<n` on Strata's thread pool; the caller takes part.
/// Nested calls run serially, so a body may itself use parallel kernels safely.
///
/// With `ownedParts`, thread k (the caller is 0) runs the k-th contiguous share of `0..<n`
/// first and helps with the others after, so a loop over the same data every call (an
/// optimizer step) keeps each share in one core's cache.
///
/// ```swift
/// parallelFor(images.count) { i in process(images[i]) }
/// ```
@inlinable
public func parallelFor(_ n: Int, ownedParts: Bool = false, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 { body(0); return }
    withoutActuallyEscaping(body) { fn in
        var box = fn
        withUnsafeMutablePointer(to: &box) { ctx in
            let task: strata_task_fn = { raw, i in
                raw!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
            }
            if ownedParts { strata_parallel_for_owned(n, task, ctx) } else { strata_parallel_for(n, task, ctx) }
        }
    }
}
