import Foundation
import SwiftProtobuf
import StrataCore
import StrataNN

/// An ONNX model run on Strata's ops, as a module: `forward` feeds the graph's first input and
/// returns its first output.
///
/// ```swift
/// let m = try OnnxModel(path: "resnet.onnx")      // e.g. from torch.onnx.export
/// let y = m(x)                                    // x [N, 3, 64, 64]
/// print(m.supportedOps)                           // the op rules of OnnxOps
/// ```
///
/// Every node's inputs are checked (ranks, sizes, attributes) before a Strata op runs: a model
/// file whose shapes do not fit stops with an error naming the node, never a trap.
public final class OnnxModel: Module {
    let graph: Onnx_GraphProto
    let constants: [String: OnnxValue]
    /// The index of the last node that reads each value (made once: `run` frees values there).
    let lastUse: [String: Int]
    public let source: String
    public let opset: Int
    /// The graph's input that data feeds (its other inputs have initializers) and its shape
    /// without the batch dimension, where the file states it (0: not stated).
    public let inputName: String
    /// Every data input (`forward` and `run(_:)` feed the first; `run(feeds:)` all of them).
    public let inputNames: [String]
    public let inputShape: [Int]
    /// Whether the first data input is int64 (token ids): `run(_:)` and `forward` then pass a
    /// float tensor's whole numbers on as int64.
    public let inputIsInt64: Bool
    public let outputName: String
    /// The file's `metadata_props`.
    public let metadata: [String: String]
    /// The error of the last `forward` that failed (it then returns an empty tensor); `run`
    /// throws instead.
    public private(set) var lastError: Error?
    /// The float initializers as (untrained) parameters, so summaries count them.
    public let weights: [OnnxWeight]
    /// The most values any tensor of a run may hold; a node that would make more stops the run
    /// with an error before it allocates (a hostile file cannot size memory).
    public var maxElements = OnnxFile.maxElements

    public init(path: String) throws {
        let m = try OnnxFile.read(path)
        source = path
        opset = Int(m.opsetImport.filter { $0.domain == "" || $0.domain == "ai.onnx" }.map(\.version).max() ?? 17)
        graph = m.graph
        let folder = (path as NSString).deletingLastPathComponent
        var c: [String: OnnxValue] = [:]
        for t in m.graph.initializer { c[t.name] = try OnnxFile.value(t, source: path, folder: folder.isEmpty ? "." : folder) }
        constants = c
        let feeds = m.graph.input.filter { c[$0.name] == nil }
        inputNames = feeds.map(\.name)
        inputName = feeds.first?.name ?? ""
        inputShape = feeds.first?.type.tensorType.shape.dim.dropFirst().map { Int($0.dimValue) } ?? []
        inputIsInt64 = feeds.first?.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.int64.rawValue)
        guard let out = m.graph.output.first?.name else { throw StrataError("\(path): the graph has no output") }
        outputName = out
        metadata = Dictionary(m.metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        weights = m.graph.initializer.compactMap { t in
            if case .float(let v)? = c[t.name] { return OnnxWeight(name: t.name, v) } else { return nil }
        }
        var last: [String: Int] = [:]
        for (i, n) in m.graph.node.enumerated() { for name in n.input where c[name] == nil { last[name] = i } }
        for o in m.graph.output { last[o.name] = nil }
        lastUse = last
        super.init()
        for n in m.graph.node {
            guard n.domain == "" || n.domain == "ai.onnx" else {
                throw StrataError("\(path): node \(n.name.isEmpty ? n.opType : n.name) is \(n.domain).\(n.opType), outside ONNX's default domain")
            }
            guard OnnxOps.supported.contains(n.opType) else {
                throw StrataError("\(path): node \(n.name.isEmpty ? "(unnamed)" : n.name) is a \(n.opType), an op Strata does not run (it runs \(OnnxOps.supported.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// The ops the importer runs.
    public var supportedOps: [String] { OnnxOps.supported.sorted() }

    /// Runs the graph on `x`; errors name the node.
    public func run(_ x: Tensor) throws -> Tensor {
        guard inputNames.count == 1 else { throw StrataError("\(source): the graph has \(inputNames.count) data inputs (\(inputNames.joined(separator: ", "))); give each") }
        var feed = OnnxValue.float(x)
        if inputIsInt64 {   // ids arrive as floats in Strata's tensors
            let s = x.scalars
            guard s.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 16_777_216 }) else {   // floats hold whole numbers exactly up to 2^24
                throw StrataError("\(source): the graph's input \(inputName) is int64 (ids); the tensor holds values that are not whole numbers")
            }
            feed = .int64(s.map { Int($0) }, shape: x.shape)
        }
        let values = try run(feeds: [inputName: feed], keepAll: false)
        guard case .float(let y)? = values[outputName] else { throw StrataError("\(source): the graph's output \(outputName) is not a float tensor") }
        return y
    }

    /// Runs the graph on every data input and returns every value it made (the graph's outputs
    /// under their names among them).
    /// With `keepAll` false, each value is dropped after the last node that reads it (the
    /// graph's outputs stay), so a run holds only the live activations.
    func run(feeds: [String: OnnxValue], keepAll: Bool = true) throws -> [String: OnnxValue] {
        var values = constants
        for name in inputNames {
            guard let v = feeds[name] else { throw StrataError("\(source): no value for the graph's input \(name)") }
            values[name] = v
        }
        try noGrad {
            for (index, node) in graph.node.enumerated() {
                let inputs = node.input.map { $0.isEmpty ? nil : values[$0] }
                for (i, name) in node.input.enumerated() where !name.isEmpty && inputs[i] == nil {
                    throw StrataError("\(source): node \(node.name) (\(node.opType)) reads \(name), which nothing before it makes")
                }
                let outs: [OnnxValue]
                do { outs = try OnnxOps.run(node, inputs, opset: opset, source: source, folder: (source as NSString).deletingLastPathComponent, limit: maxElements) } catch let e as StrataError {
                    throw StrataError("\(source): node \(node.name.isEmpty ? "(unnamed)" : node.name) (\(node.opType)): \(e.message)")
                }
                for (name, v) in zip(node.output, outs) where !name.isEmpty { values[name] = v }
                if !keepAll { for name in node.input where lastUse[name] == index { values[name] = nil } }
            }
        }
        return values
    }

    /// One row per node: its op, the shape of its first output for one zero input of
    /// `[1] + inputShape`, and the weights it reads.
    public override func summaryRows(inputShape: [Int]) -> [LayerSummary] {
        let values = (try? run(feeds: [inputName: .float(Tensor.zeros([1] + inputShape))])) ?? [:]
        let sizes = Dictionary(weights.map { ($0.name, $0.value.count) }, uniquingKeysWith: { a, _ in a })
        return graph.node.enumerated().map { i, n in
            LayerSummary(name: n.name.isEmpty ? "node \(i)" : n.name, type: n.opType, outputShape: n.output.first.flatMap { values[$0]?.shape } ?? [],
                         parameters: n.input.reduce(0) { $0 + (sizes[$1] ?? 0) })
        }
    }

    public override func forward(_ x: Tensor) -> Tensor {
        do { lastError = nil; return try run(x) } catch {
            lastError = error
            return Tensor.zeros([0])
        }
    }
}

/// One weight of an imported graph, under its ONNX name.
public final class OnnxWeight: Module {
    public let value: Parameter
    let name: String

    init(name: String, _ t: Tensor) {
        self.name = name
        value = Parameter(t)
    }
}

/// How each ONNX op runs on Strata's ops: one rule per op, inputs checked first.
enum OnnxOps {
    static let supported = Set<String>([
        "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "Conv", "Div", "Dropout", "Erf", "Flatten",
        "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Relu",
        "Reshape", "Shape", "Sigmoid", "Softmax", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    ]).union(extraOps)

    struct Attributes {
        let list: [Onnx_AttributeProto]
        func int(_ k: String, _ d: Int) -> Int { list.first { $0.name == k }.map { Int($0.i) } ?? d }
        func float(_ k: String, _ d: Float) -> Float { list.first { $0.name == k }?.f ?? d }
        func ints(_ k: String) -> [Int]? { list.first { $0.name == k }.map { $0.ints.map { Int($0) } } }
        func string(_ k: String) -> String? { list.first { $0.name == k }.map { String(decoding: $0.s, as: UTF8.self) } }
        func tensor(_ k: String) -> Onnx_TensorProto? { list.first { $0.name == k && $0.hasT }?.t }
    }

    static func fail(_ m: String) -> StrataError { StrataError(m) }

    static func float(_ v: OnnxValue?, _ what: String) throws -> Tensor {
        switch v {
        case .float(let t)?: return t
        case .int64(let i, let s)?: return Tensor(i.map(Float.init), shape: s)
        case nil: throw fail("missing input \(what)")
        }
    }

    static func ints(_ v: OnnxValue?, _ what: String) throws -> [Int] {
        switch v {
        case .int64(let i, _)?: return i
        case .float(let t)?:
            let s = t.scalars
            guard s.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 1e15 }) else { throw fail("input \(what) must hold integers") }
            return s.map { Int($0) }
        case nil: throw fail("missing input \(what)")
        }
    }

    static func axis(_ a: Int, rank: Int) throws -> Int {
        guard a >= -rank && a < rank else { throw fail("axis \(a) for rank \(rank)") }
        return a < 0 ? a + rank : a
    }

    static func broadcastable(_ a: [Int], _ b: [Int]) -> Bool {
        for (x, y) in zip(a.reversed(), b.reversed()) where x != y && x != 1 && y != 1 { return false }
        return true
    }

    static func run(_ node: Onnx_NodeProto, _ x: [OnnxValue?], opset: Int, source: String, folder: String, limit: Int) throws -> [OnnxValue] {
        let at = Attributes(list: node.attribute)
        /// Throws unless a tensor of `shape` stays within the run's limit.
        func fits(_ shape: [Int]) throws {
            guard let n = checkedProduct(shape.map { Swift.max($0, 0) }), n <= limit else {
                throw fail("its output \(shape) would hold more than \(limit) values")
            }
        }
        func input(_ i: Int) -> OnnxValue? { i < x.count ? x[i] : nil }
        func binary(_ f: (Tensor, Tensor) -> Tensor, intOp: ((Int, Int) -> Int)?) throws -> [OnnxValue] {
            if let intOp, case .int64(let a, let sa)? = input(0), case .int64(let b, let sb)? = input(1) {
                if sa == sb { return [.int64(zip(a, b).map(intOp), shape: sa)] }
                if b.count == 1 { return [.int64(a.map { intOp($0, b[0]) }, shape: sa)] }
            }
            let a = try float(input(0), "A"), b = try float(input(1), "B")
            guard broadcastable(a.shape, b.shape) else { throw fail("shapes \(a.shape) and \(b.shape) do not broadcast") }
            let r = Swift.max(a.rank, b.rank)
            let pa = [Int](repeating: 1, count: r - a.rank) + a.shape, pb = [Int](repeating: 1, count: r - b.rank) + b.shape
            try fits(zip(pa, pb).map { Swift.max($0, $1) })
            return [.float(f(a, b))]
        }
        switch node.opType {
        case "Identity", "Dropout":
            guard let v = input(0) else { throw fail("missing input") }
            return [v]
        case "Constant":
            guard let t = at.tensor("value") else { throw fail("Strata reads Constant nodes with a tensor value") }
            return [try OnnxFile.value(t, source: source, folder: folder)]
        case "Cast":
            guard let v = input(0) else { throw fail("missing input") }
            let to = at.int("to", 1)
            if to == Onnx_TensorProto.DataType.float.rawValue { return [.float(try float(v, "input"))] }
            if to == Onnx_TensorProto.DataType.bool.rawValue {   // booleans travel as int64 0 and 1
                switch v {
                case .int64(let i, let s): return [.int64(i.map { $0 != 0 ? 1 : 0 }, shape: s)]
                case .float(let t): return [.int64(t.scalars.map { $0 != 0 ? 1 : 0 }, shape: t.shape)]
                }
            }
            if to == Onnx_TensorProto.DataType.int64.rawValue || to == Onnx_TensorProto.DataType.int32.rawValue { return [.int64(try ints(v, "input"), shape: v.shape)] }
            throw fail("casts to data type \(to) are not read")
        case "Relu": return [.float(try float(input(0), "X").relu())]
        case "Sigmoid": return [.float(try float(input(0), "X").sigmoid())]
        case "Tanh": return [.float(try float(input(0), "X").tanh())]
        case "Sqrt": return [.float(try float(input(0), "X").sqrt())]
        case "LeakyRelu": return [.float(try float(input(0), "X").leakyRelu(at.float("alpha", 0.01)))]
        case "Erf":
            let t = try float(input(0), "X")
            return [.float(Tensor(t.scalars.map { Float(Foundation.erf(Double($0))) }, shape: t.shape))]
        case "Add": return try binary(+, intOp: +)
        case "Sub": return try binary(-, intOp: -)
        case "Mul": return try binary(*, intOp: *)
        case "Div": return try binary(/, intOp: { a, b in b == 0 ? 0 : a / b })
        case "Softmax", "LogSoftmax":
            let t = try float(input(0), "X")
            guard t.rank >= 1 else { throw fail("input is a scalar") }
            if opset < 13 {   // before 13: over every dimension from axis on, as one (default axis 1)
                let a = try axis(at.int("axis", 1), rank: t.rank)
                let flat = t.reshape([t.shape.prefix(a).reduce(1, *), t.shape.dropFirst(a).reduce(1, *)])
                return [.float((node.opType == "Softmax" ? flat.softmax(axis: 1) : flat.logSoftmax(axis: 1)).reshape(t.shape))]
            }
            let a = try axis(at.int("axis", -1), rank: t.rank)
            return [.float(node.opType == "Softmax" ? t.softmax(axis: a) : t.logSoftmax(axis: a))]
        case "Gemm":
            var a = try float(input(0), "A"), b = try float(input(1), "B")
            guard a.rank == 2, b.rank == 2 else { throw fail("A \(a.shape) and B \(b.shape) must be matrices") }
            if at.int("transA", 0) != 0 { a = a.transposed() }
            let transB = at.int("transB", 0) != 0
            let (k, kb, n) = (a.shape[1], transB ? b.shape[1] : b.shape[0], transB ? b.shape[0] : b.shape[1])
            guard k == kb else { throw fail("A \(a.shape) and B \(b.shape)\(transB ? " (transposed)" : "") do not multiply") }
            try fits([a.shape[0], n])
            let alpha = at.float("alpha", 1), beta = at.float("beta", 1)
            var y = transB ? linear(a, weight: b) : a.matmul(b)
            if alpha != 1 { y = y * alpha }
            if let cv = input(2) {
                let c = try float(cv, "C")
                guard broadcastable([a.shape[0], n], c.shape), c.rank <= 2 else { throw fail("C \(c.shape) does not broadcast to \([a.shape[0], n])") }
                y = y + (beta == 1 ? c : c * beta)
            }
            return [.float(y)]
        case "MatMul":
            let a = try float(input(0), "A"), b = try float(input(1), "B")
            guard a.rank >= 1, b.rank >= 1 else { throw fail("scalars do not multiply") }
            let k1 = a.shape[a.rank - 1], k2 = b.rank == 1 ? b.shape[0] : b.shape[b.rank - 2]
            guard k1 == k2 else { throw fail("A \(a.shape) and B \(b.shape) do not multiply") }
            if a.rank > 2 || b.rank > 2 {
                guard broadcastable(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2))) else { throw fail("batch dimensions of \(a.shape) and \(b.shape) do not broadcast") }
            }
            let batch = zip([Int](repeating: 1, count: Swift.max(0, b.rank - a.rank)) + a.shape.dropLast(2),
                            [Int](repeating: 1, count: Swift.max(0, a.rank - b.rank)) + b.shape.dropLast(2)).map { Swift.max($0, $1) }
            try fits(batch + [a.rank >= 2 ? a.shape[a.rank - 2] : 1, b.rank >= 2 ? b.shape[b.rank - 1] : 1])
            // [.., K] x [K, N] with a plain weight: one GEMM through linear (no transposed copy of A).
            if b.rank == 2 && a.rank >= 2 { return [.float(linear(a, weight: b.transposed()))] }
            return [.float(a.matmul(b))]
        case "Conv":
            var xt = try float(input(0), "X")
            var w = try float(input(1), "W")
            // A 1-D convolution runs as a 2-D one over a height of 1.
            let oneD = xt.rank == 3 && w.rank == 3
            guard oneD || (xt.rank == 4 && w.rank == 4) else { throw fail("Strata runs 1-D and 2-D convolutions: X \(xt.shape), W \(w.shape)") }
            let group = at.int("group", 1)
            guard group >= 1, xt.shape[1] % group == 0, w.shape[0] % group == 0, w.shape[1] * group == xt.shape[1] else {
                throw fail("X \(xt.shape) and W \(w.shape) with group \(group) do not fit")
            }
            if let k = at.ints("kernel_shape"), k != Array(w.shape.dropFirst(2)) { throw fail("kernel_shape \(k) differs from W \(w.shape)") }
            let d = oneD ? 1 : 2
            var strides = at.ints("strides") ?? [Int](repeating: 1, count: d), dil = at.ints("dilations") ?? [Int](repeating: 1, count: d)
            guard strides.count == d, dil.count == d, strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), dil.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else {
                throw fail("strides \(strides) and dilations \(dil) are not valid \(d)-D ones")
            }
            var pads = try autoPads(at, spatial: Array(xt.shape.dropFirst(2)), kernel: Array(w.shape.dropFirst(2)), strides: strides, dilations: dil)
                ?? at.ints("pads") ?? [Int](repeating: 0, count: 2 * d)
            guard pads.count == 2 * d, pads.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else { throw fail("pads \(pads) are not valid \(d)-D ones") }
            if oneD {
                (xt, w) = (xt.unsqueeze(2), w.unsqueeze(2))
                (strides, dil, pads) = ([1, strides[0]], [1, dil[0]], [0, pads[0], 0, pads[1]])
            }
            if pads[0] != pads[2] || pads[1] != pads[3] {   // uneven padding: pad first, then convolve unpadded
                try fits([xt.shape[0], xt.shape[1], xt.shape[2] + pads[0] + pads[2], xt.shape[3] + pads[1] + pads[3]])
                xt = xt.pad([(pads[0], pads[2]), (pads[1], pads[3])])
                pads = [0, 0, 0, 0]
            }
            let eh = (w.shape[2] - 1) * dil[0] + 1, ew = (w.shape[3] - 1) * dil[1] + 1
            guard xt.shape[2] + 2 * pads[0] >= eh, xt.shape[3] + 2 * pads[1] >= ew else { throw fail("input \(xt.shape) is smaller than the kernel") }
            try fits([xt.shape[0], w.shape[0], (xt.shape[2] + 2 * pads[0] - eh) / strides[0] + 1, (xt.shape[3] + 2 * pads[1] - ew) / strides[1] + 1])
            var bias: Tensor?
            if let bv = input(2) {
                bias = try float(bv, "B")
                guard bias!.shape == [w.shape[0]] else { throw fail("B \(bias!.shape) must be [\(w.shape[0])]") }
            }
            let y = conv2d(xt, weight: w, bias: bias, stride: Size2(strides[0], strides[1]), padding: Size2(pads[0], pads[1]),
                           dilation: Size2(dil[0], dil[1]), groups: group)
            return [.float(oneD ? y.squeeze(2) : y)]
        case "MaxPool", "AveragePool":
            var t = try float(input(0), "X")
            // 1-D pooling runs as 2-D pooling over a height of 1.
            let oneD = t.rank == 3
            guard oneD || t.rank == 4 else { throw fail("Strata runs 1-D and 2-D pooling, got X \(t.shape)") }
            let d = oneD ? 1 : 2
            guard var k = at.ints("kernel_shape"), k.count == d, k.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else { throw fail("kernel_shape must give \(d) sizes of at most 65536") }
            var s = at.ints("strides") ?? [Int](repeating: 1, count: d)
            var dil = at.ints("dilations") ?? [Int](repeating: 1, count: d)
            guard s.count == d, s.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), dil.count == d, dil.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else {
                throw fail("strides \(s) and dilations \(dil) are not valid \(d)-D ones")
            }
            let spatial = Array(t.shape.dropFirst(2))
            var pads = try autoPads(at, spatial: spatial, kernel: k, strides: s, dilations: dil) ?? at.ints("pads") ?? [Int](repeating: 0, count: 2 * d)
            guard pads.count == 2 * d, (0..<d).allSatisfy({ pads[$0] >= 0 && pads[$0 + d] >= 0 && Swift.max(pads[$0], pads[$0 + d]) < k[$0] }) else {
                throw fail("pads \(pads) for kernel \(k): each pad must be below the kernel")
            }
            let ceilMode = at.int("ceil_mode", 0) != 0
            let out = (0..<d).map { windowPositions(spatial[$0], kernel: k[$0], stride: s[$0], padBefore: pads[$0], padAfter: pads[$0 + d],
                                                    dilation: dil[$0], ceilMode: ceilMode) }
            guard out.allSatisfy({ $0 > 0 }) else { throw fail("input \(t.shape) is smaller than the window \(k)") }
            try fits(Array(t.shape.prefix(2)) + out)
            if oneD {
                t = t.unsqueeze(2)
                (k, s, dil, pads) = ([1, k[0]], [1, s[0]], [1, dil[0]], [0, pads[0], 0, pads[1]])
            }
            let isMax = node.opType == "MaxPool"
            if isMax { guard node.output.count < 2 || node.output[1].isEmpty else { throw fail("MaxPool's indices output is not made") } }
            // ONNX's average leaves the padding out of its divisor unless count_include_pad is 1.
            let windows = PoolWindows(kernel: Size2(k[0], k[1]), stride: Size2(s[0], s[1]), padBefore: Size2(pads[0], pads[1]),
                                      padAfter: Size2(pads[2], pads[3]), dilation: Size2(dil[0], dil[1]), ceilMode: ceilMode,
                                      countIncludePad: at.int("count_include_pad", 0) != 0)
            let y = pool2d(t, max: isMax, windows, node.opType)
            return [.float(oneD ? y.squeeze(2) : y)]
        case "GlobalAveragePool":
            let t = try float(input(0), "X")
            guard t.rank >= 3 else { throw fail("X \(t.shape) has no spatial dimensions") }
            return [.float(t.mean(axes: Array(2..<t.rank), keepDims: true))]
        case "GlobalMaxPool":
            let t = try float(input(0), "X")
            guard t.rank >= 3, !t.shape.contains(0) else { throw fail("X \(t.shape) has no spatial dimensions or is empty") }
            return [.float(t.max(axes: Array(2..<t.rank), keepDims: true))]
        case "BatchNormalization":
            let t = try float(input(0), "X")
            guard t.rank >= 2 else { throw fail("X \(t.shape) must be [N, C, ...]") }
            let c = t.shape[1]
            let p = try (1...4).map { try float(input($0), "parameter \($0)") }
            guard p.allSatisfy({ $0.shape == [c] }) else { throw fail("scale, bias, mean and variance must be [\(c)], got \(p.map(\.shape))") }
            guard at.int("training_mode", 0) == 0 else { throw fail("training-mode batch norm is not read") }
            return [.float(batchNorm(t, weight: p[0], bias: p[1], statistics: (p[2], p[3]), eps: at.float("epsilon", 1e-5)).y)]
        case "Flatten":
            guard let v = input(0) else { throw fail("missing input") }
            let shape = v.shape
            let r = shape.count, given = at.int("axis", 1)
            guard given >= -r && given <= r else { throw fail("axis \(given) for rank \(r)") }
            let a = given < 0 ? given + r : given
            let outer = shape.prefix(a).reduce(1, *), inner = shape.dropFirst(a).reduce(1, *)
            return [try reshaped(v, [outer, inner])]
        case "Reshape":
            guard let v = input(0) else { throw fail("missing input") }
            let target = try ints(input(1), "shape")
            let allowZero = at.int("allowzero", 0) != 0
            var out = target.enumerated().map { i, d in d == 0 && !allowZero && i < v.shape.count ? v.shape[i] : d }
            let total = v.shape.reduce(1, *)
            guard out.allSatisfy({ $0 >= -1 }), let known = checkedProduct(out.filter { $0 != -1 }) else { throw fail("shape \(target) does not fit \(v.shape)") }
            if let i = out.firstIndex(of: -1) {
                guard out.filter({ $0 == -1 }).count == 1, known > 0, total % known == 0 else { throw fail("shape \(target) does not fit \(v.shape)") }
                out[i] = total / known
            }
            guard checkedProduct(out) == total else { throw fail("shape \(target) does not fit \(v.shape)") }
            return [try reshaped(v, out)]
        case "Transpose":
            guard let v = input(0) else { throw fail("missing input") }
            let r = v.shape.count
            let perm = at.ints("perm") ?? Array((0..<r).reversed())
            guard perm.sorted() == Array(0..<r) else { throw fail("perm \(perm) for rank \(r)") }
            if case .int64(let i, let s) = v {   // integers moved as integers
                var strides = [Int](repeating: 1, count: r)
                for k in stride(from: r - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * s[k + 1] }
                let outShape = perm.map { s[$0] }
                var out: [Int] = []
                out.reserveCapacity(i.count)
                func walk(_ k: Int, _ base: Int) {
                    if k == r { out.append(i[base]); return }
                    for j in 0..<outShape[k] { walk(k + 1, base + j * strides[perm[k]]) }
                }
                walk(0, 0)
                return [.int64(out, shape: outShape)]
            }
            return [.float(try float(v, "X").permute(perm))]
        case "Concat":
            let vs = x.compactMap { $0 }
            guard !vs.isEmpty, vs.count == x.count else { throw fail("missing input") }
            let r = vs[0].shape.count
            let a = try axis(at.int("axis", 0), rank: max(r, 1))
            guard vs.allSatisfy({ $0.shape.count == r && zip($0.shape, vs[0].shape).enumerated().allSatisfy { $0.offset == a || $0.element.0 == $0.element.1 } }) else {
                throw fail("shapes \(vs.map(\.shape)) do not join along axis \(a)")
            }
            var joined = vs[0].shape
            if !joined.isEmpty { joined[a] = vs.map { $0.shape.isEmpty ? 1 : $0.shape[a] }.reduce(0, +) }
            try fits(joined)
            if vs.allSatisfy({ if case .int64 = $0 { return true } else { return false } }), r >= 1 {
                // Integers stay integers: each outer block joins the inputs' inner blocks in turn.
                let outer = vs[0].shape.prefix(a).reduce(1, *)
                let parts = try vs.map { (try ints($0, "input"), $0.shape.dropFirst(a).reduce(1, *)) }
                var out: [Int] = []
                out.reserveCapacity(joined.reduce(1, *))
                for o in 0..<outer { for (v, inner) in parts { out += v[(o * inner)..<((o + 1) * inner)] } }
                return [.int64(out, shape: joined)]
            }
            return [.float(Tensor.concat(try vs.map { try float($0, "input") }, axis: a))]
        case "Shape":
            guard let v = input(0) else { throw fail("missing input") }
            // start and end (opset 15) slice the shape, clamped as Python's slices are.
            let r = v.shape.count
            func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i < 0 ? i + r : i, 0), r) }
            let lo = clamp(at.int("start", 0)), hi = clamp(at.int("end", r))
            let dims = lo < hi ? Array(v.shape[lo..<hi]) : []
            return [.int64(dims, shape: [dims.count])]
        case "Gather":
            guard let data = input(0) else { throw fail("missing data") }
            let idx = try ints(input(1), "indices"), idxShape = input(1)!.shape
            let a = try axis(at.int("axis", 0), rank: max(data.shape.count, 1))
            let n = data.shape.isEmpty ? 0 : data.shape[a]
            guard idx.allSatisfy({ $0 >= -n && $0 < n }) else { throw fail("indices outside 0..<\(n)") }
            let fixed = idx.map { $0 < 0 ? $0 + n : $0 }
            let outShape = Array(data.shape.prefix(a)) + idxShape + Array(data.shape.dropFirst(a + 1))
            try fits(outShape)
            switch data {
            case .int64(let v, let s):
                let outer = s.prefix(a).reduce(1, *), inner = s.dropFirst(a + 1).reduce(1, *)
                var out: [Int] = []
                out.reserveCapacity(outShape.reduce(1, *))
                for o in 0..<outer { for i in fixed { out += v[((o * n + i) * inner)..<((o * n + i + 1) * inner)] } }
                return [.int64(out, shape: outShape)]
            case .float(let t):
                return [.float(t.indexSelect(axis: a, indices: fixed).reshape(outShape))]
            }
        case "Unsqueeze", "Squeeze":
            guard let v = input(0) else { throw fail("missing input") }
            let axes = try opset >= 13 ? (input(1).map { try ints($0, "axes") } ?? []) : (at.ints("axes") ?? [])
            var shape = v.shape
            if node.opType == "Unsqueeze" {
                let r = shape.count + axes.count
                for a in try axes.map({ try axis($0, rank: r) }).sorted() { shape.insert(1, at: a) }
            } else {
                let drop = try Set(axes.isEmpty ? shape.indices.filter { shape[$0] == 1 } : axes.map { try axis($0, rank: shape.count) })
                guard drop.allSatisfy({ shape[$0] == 1 }) else { throw fail("squeezes axes \(axes) of \(shape), not all of size 1") }
                shape = shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            }
            return [try reshaped(v, shape)]
        default:
            return try extra(node, x, at: at, opset: opset, source: source, folder: folder, limit: limit)
        }
    }

    static func reshaped(_ v: OnnxValue, _ shape: [Int]) throws -> OnnxValue {
        switch v {
        case .float(let t): return .float(t.reshape(shape))
        case .int64(let i, _): return .int64(i, shape: shape)
        }
    }
}
