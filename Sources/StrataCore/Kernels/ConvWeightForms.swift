import CStrata
import Foundation

/// A convolution weight in the forms the forward kernels read (GEMM panels, Winograd-transformed
/// filters), made the first time a call needs each and kept with the weight's storage. Calls that
/// do not train the weight (inference, evaluation, a frozen layer) reuse them instead of packing
/// the weight again: at batch 1 that packing was a fifth of a face network's time.
///
/// Forms belong to one `version` of the storage: any write through the public API bumps it, and
/// the next call makes new forms, so a pack is never stale.
final class ConvWeightForms: @unchecked Sendable {
    let handle: OpaquePointer
    let version: Int

    private init?(version: Int) {
        guard let h = sk_conv_prepared_new() else { return nil }
        (handle, self.version) = (h, version)
    }

    deinit { sk_conv_prepared_free(handle) }

    /// Forms made so far (tests).
    var count: Int { Int(sk_conv_prepared_forms(handle)) }

    private static let lock = NSLock()

    /// The forms kept for `weight`, or nil where this call records the weight's gradient (its
    /// values change every training step, so keeping forms would only cost memory).
    static func kept(for weight: Tensor) -> ConvWeightForms? {
        if GradMode.isEnabled && weight.requiresGrad { return nil }
        let storage = weight.storage
        lock.lock()
        defer { lock.unlock() }
        if let f = storage.derived as? ConvWeightForms, f.version == storage.version { return f }
        let f = ConvWeightForms(version: storage.version)
        storage.derived = f
        return f
    }
}
