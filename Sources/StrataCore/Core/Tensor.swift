import CStrata

/// An n-dimensional array of `Float`, with value semantics and reverse-mode autograd.
///
/// Storage is always contiguous and row-major. Copies share storage until one of them is
/// written (copy on write).
///
/// ```swift
/// var x = Tensor([1, 2, 3, 4], shape: [2, 2])
/// x.requiresGrad = true
/// let y = (x * x).sum()
/// y.backward()
/// print(x.grad!)   // [[2, 4], [6, 8]]
/// ```
public struct Tensor {
    @usableFromInline var storage: TensorStorage
    /// The size of each dimension.
    public private(set) var shape: [Int]
    /// The autograd identity of this tensor; nil for constants.
    @usableFromInline var node: GradNode?

    @usableFromInline
    init(storage: TensorStorage, shape: [Int], node: GradNode? = nil) {
        self.storage = storage
        self.shape = shape
        self.node = node
    }

    /// A tensor of the given shape whose contents are not initialised. Kernels that write every
    /// element use this.
    @inlinable
    public init(uninitializedShape shape: [Int]) {
        for d in shape where d < 0 { shapeFail("Tensor", "negative dimension in shape \(fmt(shape))") }
        self.init(storage: TensorStorage(count: shape.reduce(1, *)), shape: shape)
    }

    /// A tensor from row-major scalars.
    public init(_ scalars: [Float], shape: [Int]) {
        let n = shape.reduce(1, *)
        shapeCheck(n == scalars.count, "Tensor", "\(scalars.count) scalars do not fill shape \(fmt(shape))")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { src in
            if n > 0 { storage.base.update(from: src.baseAddress!, count: n) }
        }
    }

    /// A 1-D tensor.
    public init(_ scalars: [Float]) { self.init(scalars, shape: [scalars.count]) }

    /// A 0-D (scalar) tensor.
    public init(_ value: Float) { self.init([value], shape: []) }

    /// A 2-D tensor from rows of equal length.
    public init(_ rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        for r in rows { shapeCheck(r.count == cols, "Tensor", "rows have different lengths") }
        self.init(rows.flatMap { $0 }, shape: [rows.count, cols])
    }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements.
    @inlinable public var count: Int { storage.count }

    /// The elements in row-major order.
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// The single element of a one-element tensor.
    public var item: Float {
        shapeCheck(count == 1, "item", "tensor of shape \(fmt(shape)) has \(count) elements, not 1")
        return storage.base[0]
    }

    /// Reads one element.
    public subscript(index: Int...) -> Float {
        shapeCheck(index.count == rank, "subscript", "\(index.count) indices for shape \(fmt(shape))")
        var offset = 0
        for (d, i) in index.enumerated() {
            shapeCheck(i >= 0 && i < shape[d], "subscript", "index \(i) out of range for dimension \(d) of shape \(fmt(shape))")
            offset = offset * shape[d] + i
        }
        return storage.base[offset]
    }

    /// Read access to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Write access to the elements; copies the storage first if another tensor shares it.
    /// Writes bypass autograd: use it for parameter updates and for filling new tensors.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: dataForWriting(), count: count))
    }

    /// Base address for a write that outlives one closure (an optimizer's parallel pass over many
    /// parameters), and what `withUnsafeMutableBufferPointer` writes through: copies shared
    /// storage first and marks the values changed. Valid while this tensor keeps its storage.
    @inlinable
    package mutating func dataForWriting() -> UnsafeMutablePointer<Float> {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(count: storage.count)
            copy.base.update(from: storage.base, count: storage.count)
            storage = copy
        }
        storage.version &+= 1
        return storage.base
    }

    /// Base address for kernels that only read.
    @inlinable package var data: UnsafeMutablePointer<Float> { storage.base }

    /// Reinterprets the elements with a new shape of the same size (no copy, no autograd).
    @usableFromInline
    func withShape(_ newShape: [Int]) -> Tensor {
        Tensor(storage: storage, shape: newShape, node: nil)
    }

    /// Same storage and shape, no autograd history.
    @inlinable
    func constant() -> Tensor { Tensor(storage: storage, shape: shape, node: nil) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        func fmtValue(_ v: Float) -> String {
            if v == v.rounded() && Swift.abs(v) < 1e7 { return String(Int(v)) }
            return String(format: "%.4g", Double(v))
        }
        let values = scalars
        func render(_ dim: Int, _ offset: Int) -> String {
            if dim == rank { return fmtValue(values[offset]) }
            let stride = shape[(dim + 1)...].reduce(1, *)
            let n = shape[dim]
            var parts: [String] = []
            let limit = 6
            for i in 0..<n {
                if n > limit && i == limit / 2 { parts.append("..."); }
                if n > limit && i >= limit / 2 && i < n - limit / 2 { continue }
                parts.append(render(dim + 1, offset + i * stride))
            }
            return "[" + parts.joined(separator: ", ") + "]"
        }
        return "Tensor(shape: \(fmt(shape)), \(count == 0 ? "[]" : render(0, 0)))"
    }
}

import Foundation

extension Tensor {
    /// True when both tensors have the same shape and every pair of elements is within
    /// `atol + rtol * |other|`.
    public func allClose(_ other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        for i in 0..<count {
            let a = data[i], b = other.data[i]
            if a.isNaN || b.isNaN { return false }
            if Swift.abs(a - b) > atol + rtol * Swift.abs(b) { return false }
        }
        return true
    }
}

/// Library-wide settings.
public enum Strata {
    /// Threads the kernels use (default: `STRATA_NUM_THREADS`, else every core).
    public static var numThreads: Int {
        get { Int(strata_get_num_threads()) }
        set { strata_set_num_threads(Int32(newValue)) }
    }

    /// The instruction set the kernels were dispatched to: "avx512", "avx2" or "generic".
    public static var cpuKernel: String { String(cString: strata_cpu_isa_name()) }

    /// Winograd for 3x3 convolutions: "off", "where it pays" (the default: F(4x4, 3x3)), "everywhere"
    /// (F(2x2, 3x3)) or "everywhere, 4x4 tiles" (`STRATA_WINOGRAD=0/1/2/3`).
    public static var winograd: String { ["off", "where it pays", "everywhere", "everywhere, 4x4 tiles"][Int(min(max(sk_winograd_enabled(), 0), 3))] }

    /// Caps the GEMM micro-kernel at "avx2" or "generic" (nil: the best the CPU has). For tests
    /// and comparisons; `STRATA_ISA` does the same from the environment.
    public static func restrictKernels(to level: String?) {
        switch level {
        case "avx2": strata_force_isa(1)
        case "generic": strata_force_isa(0)
        default: strata_force_isa(-1)
        }
    }
}
