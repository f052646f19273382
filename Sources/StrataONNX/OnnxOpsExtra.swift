import Foundation
import StrataCore
import StrataNN

/// The recurrent, normalisation, reduction, comparison and indexing ops of the importer (issue
/// 18): the rules `OnnxOps.run` hands on for ops outside its own switch. As there, every input
/// is checked before anything is computed or allocated. Booleans travel as int64 0 and 1.
extension OnnxOps {
    static let extraOps: Set<String> = [
        "GRU", "LSTM", "LayerNormalization", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
        "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "Where", "Max", "Min", "Range", "Split", "Slice",
        "Pow", "Neg", "Exp", "Log", "Expand", "ConstantOfShape", "Clip", "Pad", "OneHot", "ConvTranspose",
    ]

    /// The pads an `auto_pad` of SAME_UPPER, SAME_LOWER or VALID stands for (ONNX's rule: an output of
    /// ceil(size / stride), the odd pad at the end for SAME_UPPER, at the start for SAME_LOWER); nil
    /// for NOTSET, where `pads` holds them.
    static func autoPads(_ at: Attributes, spatial: [Int], kernel: [Int], strides: [Int], dilations: [Int]) throws -> [Int]? {
        let mode = try autoPadMode(at)
        let d = spatial.count
        guard kernel.count == d, strides.count == d, dilations.count == d else { throw fail("kernel \(kernel), strides \(strides) and dilations \(dilations) must give \(d) sizes") }
        switch mode {
        case "NOTSET": return nil
        case "VALID": return [Int](repeating: 0, count: 2 * d)
        default:
            var pads = [Int](repeating: 0, count: 2 * d)
            for i in 0..<d {
                let out = (spatial[i] + strides[i] - 1) / strides[i], span = (kernel[i] - 1) * dilations[i] + 1
                (pads[i], pads[i + d]) = samePads(Swift.max(0, (out - 1) * strides[i] + span - spatial[i]), mode)
            }
            return pads
        }
    }

    /// `auto_pad`, checked: NOTSET (the default), VALID, SAME_UPPER or SAME_LOWER.
    static func autoPadMode(_ at: Attributes) throws -> String {
        let mode = at.string("auto_pad") ?? "NOTSET"
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(mode) else {
            throw fail("auto_pad \"\(mode)\" is none of NOTSET, SAME_UPPER, SAME_LOWER and VALID")
        }
        return mode
    }

    /// A SAME padding of `total` split before and after: the odd one at the end for SAME_UPPER,
    /// at the start for SAME_LOWER.
    static func samePads(_ total: Int, _ mode: String) -> (before: Int, after: Int) {
        mode == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
    }

    static func fits(_ shape: [Int], _ limit: Int) throws {
        guard shape.allSatisfy({ $0 >= 0 }), let n = checkedProduct(shape), n <= limit else {
            throw fail("its output \(shape) would hold more than \(limit) values")
        }
    }

    /// ONNX's multidirectional broadcast of `shapes`, or an error naming them.
    static func broadcast(_ shapes: [[Int]]) throws -> [Int] {
        let r = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: r)
        for s in shapes {
            for (i, d) in s.enumerated() {
                let k = r - s.count + i
                if out[k] == 1 { out[k] = d } else if d != 1 && d != out[k] {
                    throw fail("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) do not broadcast")
                }
            }
        }
        return out
    }

    /// For each element of `out` (row-major), the index of the element of `shape` that
    /// broadcasts to it (`shape` must broadcast to `out`).
    static func sourceIndices(_ shape: [Int], _ out: [Int]) -> [Int] {
        let r = out.count, padded = [Int](repeating: 1, count: r - shape.count) + shape
        var strides = [Int](repeating: 0, count: r), acc = 1
        for i in (0..<r).reversed() {
            strides[i] = padded[i] == 1 ? 0 : acc
            acc *= padded[i]
        }
        var idx: [Int] = []
        idx.reserveCapacity(out.reduce(1, *))
        func walk(_ a: Int, _ base: Int) {
            if a == r { idx.append(base); return }
            for k in 0..<out[a] { walk(a + 1, base + k * strides[a]) }
        }
        walk(0, 0)
        return idx
    }

    /// Elements `starts[a] + k * steps[a]`, `k < counts[a]`, along every axis of a row-major array.
    static func strided<T>(_ v: [T], _ shape: [Int], starts: [Int], steps: [Int], counts: [Int]) -> [T] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        var out: [T] = []
        out.reserveCapacity(counts.reduce(1, *))
        func walk(_ a: Int, _ base: Int) {
            if a == shape.count { out.append(v[base]); return }
            for k in 0..<counts[a] { walk(a + 1, base + (starts[a] + k * steps[a]) * strides[a]) }
        }
        walk(0, 0)
        return out
    }

    /// The same slice of a float or int64 value.
    static func strided(_ v: OnnxValue, starts: [Int], steps: [Int], counts: [Int]) -> OnnxValue {
        switch v {
        case .float(let t): return .float(Tensor(strided(t.scalars, t.shape, starts: starts, steps: steps, counts: counts), shape: counts))
        case .int64(let i, let s): return .int64(strided(i, s, starts: starts, steps: steps, counts: counts), shape: counts)
        }
    }

    static func isInt(_ v: OnnxValue?) -> Bool { if case .int64? = v { return true } else { return false } }

    /// Elementwise over broadcast inputs of one kind.
    static func zipped<T, R>(_ a: [T], _ sa: [Int], _ b: [T], _ sb: [Int], limit: Int, _ f: (T, T) -> R) throws -> ([R], [Int]) {
        let out = try broadcast([sa, sb])
        try fits(out, limit)
        let ia = sourceIndices(sa, out), ib = sourceIndices(sb, out)
        return (zip(ia, ib).map { f(a[$0], b[$1]) }, out)
    }

    /// Two inputs as ints when both are int64, else as floats (the op's float rule).
    static func pairwise(_ a: OnnxValue?, _ b: OnnxValue?, limit: Int, int: (Int, Int) -> Int, float: (Float, Float) -> Float) throws -> OnnxValue {
        if case .int64(let x, let sx)? = a, case .int64(let y, let sy)? = b {
            let (v, s) = try zipped(x, sx, y, sy, limit: limit, int)
            return .int64(v, shape: s)
        }
        let x = try OnnxOps.float(a, "A"), y = try OnnxOps.float(b, "B")
        let (v, s) = try zipped(x.scalars, x.shape, y.scalars, y.shape, limit: limit, float)
        return .float(Tensor(v, shape: s))
    }

    /// `op` (>, <, ==, >=, <=) elementwise: int64 against int64 exactly, else as floats; 1 for true.
    static func compare(_ a: OnnxValue?, _ b: OnnxValue?, limit: Int, _ op: String) throws -> OnnxValue {
        func test<T: Comparable>(_ x: T, _ y: T) -> Int {
            switch op {
            case ">": return x > y ? 1 : 0
            case "<": return x < y ? 1 : 0
            case ">=": return x >= y ? 1 : 0
            case "<=": return x <= y ? 1 : 0
            default: return x == y ? 1 : 0
            }
        }
        if case .int64(let x, let sx)? = a, case .int64(let y, let sy)? = b {
            let (v, s) = try zipped(x, sx, y, sy, limit: limit, test)
            return .int64(v, shape: s)
        }
        let x = try OnnxOps.float(a, "A"), y = try OnnxOps.float(b, "B")
        let (v, s) = try zipped(x.scalars, x.shape, y.scalars, y.shape, limit: limit, test)
        return .int64(v, shape: s)
    }

    static func scalarInts(_ v: OnnxValue?, _ what: String) throws -> Int {
        let i = try ints(v, what)
        guard i.count == 1 else { throw fail("\(what) must be one value, got \(v?.shape ?? [])") }
        return i[0]
    }

    static func scalarFloat(_ v: OnnxValue?, _ what: String) throws -> Float {
        let t = try float(v, what)
        guard t.count == 1 else { throw fail("\(what) must be one value, got \(t.shape)") }
        return t.scalars[0]
    }

    static func extra(_ node: Onnx_NodeProto, _ x: [OnnxValue?], at: Attributes, opset: Int, source: String, folder: String, limit: Int) throws -> [OnnxValue] {
        func input(_ i: Int) -> OnnxValue? { i < x.count ? x[i] : nil }
        switch node.opType {
        case "GRU", "LSTM":
            return try recurrent(node, x, at: at, limit: limit)
        case "ConvTranspose":
            return [.float(try convTranspose(input(0), input(1), input(2), at: at, limit: limit))]
        case "LayerNormalization":
            let t = try float(input(0), "X")
            guard t.rank >= 1 else { throw fail("X is a scalar") }
            let a = try axis(at.int("axis", -1), rank: t.rank)
            guard at.int("stash_type", 1) == 1 else { throw fail("stash_type \(at.int("stash_type", 1)) is not read (float32 statistics only)") }
            let eps = at.float("epsilon", 1e-5)
            guard eps >= 0, eps.isFinite else { throw fail("epsilon \(eps) must be a finite value of at least 0") }
            let normShape = Array(t.shape[a...])
            let outer = t.shape.prefix(a).reduce(1, *), inner = normShape.reduce(1, *)
            func expanded(_ v: OnnxValue?, _ what: String) throws -> [Float]? {
                guard let v else { return nil }
                let p = try float(v, what)
                guard p.rank <= normShape.count, (try? broadcast([p.shape, normShape])) == normShape else {
                    throw fail("\(what) \(p.shape) does not broadcast to the normalised shape \(normShape)")
                }
                return sourceIndices(p.shape, normShape).map { p.scalars[$0] }
            }
            guard let scale = try expanded(input(1), "Scale") else { throw fail("missing input Scale") }
            let bias = try expanded(input(2), "B")
            let xs = t.scalars
            var y = [Float](repeating: 0, count: xs.count), means = [Float](repeating: 0, count: outer), inv = means
            for o in 0..<outer {
                let base = o * inner
                var s = 0.0
                for k in 0..<inner { s += Double(xs[base + k]) }
                let m = inner > 0 ? s / Double(inner) : 0
                var q = 0.0
                for k in 0..<inner { let d = Double(xs[base + k]) - m; q += d * d }
                let r = 1 / (q / Double(Swift.max(inner, 1)) + Double(eps)).squareRoot()
                means[o] = Float(m)
                inv[o] = Float(r)
                for k in 0..<inner {
                    y[base + k] = Float((Double(xs[base + k]) - m) * r) * scale[k] + (bias?[k] ?? 0)
                }
            }
            let statShape = Array(t.shape.prefix(a)) + [Int](repeating: 1, count: t.rank - a)
            return [.float(Tensor(y, shape: t.shape)), .float(Tensor(means, shape: statShape)), .float(Tensor(inv, shape: statShape))]
        case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin":
            guard let v = input(0) else { throw fail("missing input data") }
            // Axes are an input from opset 13 for ReduceSum and from 18 for the others.
            let axesFromInput = opset >= (node.opType == "ReduceSum" ? 13 : 18)
            let given = try axesFromInput ? (input(1).map { try ints($0, "axes") } ?? []) : (at.ints("axes") ?? [])
            let r = v.shape.count
            if given.isEmpty && at.int("noop_with_empty_axes", 0) != 0 { return [v] }
            let axes = given.isEmpty ? Set(0..<r) : Set(try given.map { try axis($0, rank: Swift.max(r, 1)) })
            guard axes.count == given.count || given.isEmpty else { throw fail("axes \(given) repeat an axis") }
            let keep = at.int("keepdims", 1) != 0
            let kept = v.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            let outShape = keep ? kept : v.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            let outCount = kept.reduce(1, *)
            let target = sourceIndices(kept, v.shape)   // each input element's output slot
            let op = node.opType
            switch v {
            case .int64(let vals, _):
                guard op != "ReduceMean" || vals.count > 0 else { throw fail("the mean of no values") }
                var acc = [Int](repeating: op == "ReduceMax" ? Int.min : op == "ReduceMin" ? Int.max : 0, count: outCount)
                for (i, o) in target.enumerated() {
                    switch op {
                    case "ReduceMax": acc[o] = Swift.max(acc[o], vals[i])
                    case "ReduceMin": acc[o] = Swift.min(acc[o], vals[i])
                    default: acc[o] = acc[o] &+ vals[i]
                    }
                }
                if op == "ReduceMean" { let n = Swift.max(1, vals.count / Swift.max(outCount, 1)); acc = acc.map { $0 / n } }
                return [.int64(acc, shape: outShape)]
            case .float(let t):
                let vals = t.scalars
                var acc = [Double](repeating: op == "ReduceMax" ? -.infinity : op == "ReduceMin" ? .infinity : 0, count: outCount)
                for (i, o) in target.enumerated() {
                    let e = Double(vals[i])
                    switch op {
                    case "ReduceMax": acc[o] = e.isNaN || e > acc[o] ? e : acc[o]
                    case "ReduceMin": acc[o] = e.isNaN || e < acc[o] ? e : acc[o]
                    default: acc[o] += e
                    }
                }
                if op == "ReduceMean" {
                    let n = Double(vals.count) / Double(Swift.max(outCount, 1))
                    acc = acc.map { $0 / n }
                }
                return [.float(Tensor(acc.map { Float($0) }, shape: outShape))]
            }
        case "Greater": return [try compare(input(0), input(1), limit: limit, ">")]
        case "Less": return [try compare(input(0), input(1), limit: limit, "<")]
        case "Equal": return [try compare(input(0), input(1), limit: limit, "==")]
        case "GreaterOrEqual": return [try compare(input(0), input(1), limit: limit, ">=")]
        case "LessOrEqual": return [try compare(input(0), input(1), limit: limit, "<=")]
        case "Where":
            guard let c = input(0), let a = input(1), let b = input(2) else { throw fail("Where takes condition, X and Y") }
            let out = try broadcast([c.shape, a.shape, b.shape])
            try fits(out, limit)
            let cond: [Bool]
            switch c {
            case .int64(let i, _): cond = i.map { $0 != 0 }
            case .float(let t): cond = t.scalars.map { $0 != 0 }
            }
            let ic = sourceIndices(c.shape, out), ia = sourceIndices(a.shape, out), ib = sourceIndices(b.shape, out)
            if case .int64(let x, _) = a, case .int64(let y, _) = b {
                return [.int64((0..<ic.count).map { cond[ic[$0]] ? x[ia[$0]] : y[ib[$0]] }, shape: out)]
            }
            let x = try float(a, "X").scalars, y = try float(b, "Y").scalars
            return [.float(Tensor((0..<ic.count).map { cond[ic[$0]] ? x[ia[$0]] : y[ib[$0]] }, shape: out))]
        case "Max", "Min":
            let vs = x.compactMap { $0 }
            guard !vs.isEmpty, vs.count == x.count else { throw fail("missing input") }
            let isMax = node.opType == "Max"
            // NaN wins, as in ONNX's reference (numpy's maximum).
            let pick: (Float, Float) -> Float = { a, b in a.isNaN || b.isNaN ? .nan : isMax ? Swift.max(a, b) : Swift.min(a, b) }
            var acc = vs[0]
            for v in vs.dropFirst() {
                acc = try pairwise(acc, v, limit: limit, int: isMax ? Swift.max : Swift.min, float: pick)
            }
            return [acc]
        case "OneHot":
            // indices (any shape), depth (one value), values [off, on] -> indices' shape with a
            // new axis of depth; indices outside [-depth, depth) give all-off rows.
            guard let idx = input(0) else { throw fail("missing indices") }
            let depthValue = isInt(input(1)) ? Double(try scalarInts(input(1), "depth")) : Double(try scalarFloat(input(1), "depth"))
            guard depthValue.isFinite, depthValue < Double(limit) else { throw fail("depth \(depthValue) is not a size") }
            let depth = Int(depthValue)
            guard depth >= 1 else { throw fail("depth \(depth) must be at least 1") }
            let values = try float(input(2), "values")
            guard values.count == 2 else { throw fail("values must hold off and on, got \(values.shape)") }
            let r = idx.shape.count
            let a = try axis(at.int("axis", -1), rank: r + 1)
            var out = idx.shape
            out.insert(depth, at: a)
            try fits(out, limit)
            let (off, on) = (values.scalars[0], values.scalars[1])
            let ids = try ints(idx, "indices")
            let inner = idx.shape[a...].reduce(1, *), outer = idx.shape[..<a].reduce(1, *)
            var y = [Float](repeating: off, count: outer * depth * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    var k = ids[o * inner + i]
                    if k < 0 { k += depth }
                    if k >= 0 && k < depth { y[(o * depth + k) * inner + i] = on }
                }
            }
            return [.float(Tensor(y, shape: out))]
        case "Range":
            if isInt(input(0)) && isInt(input(1)) && isInt(input(2)) {
                let s = try scalarInts(input(0), "start"), l = try scalarInts(input(1), "limit"), d = try scalarInts(input(2), "delta")
                guard d != 0 else { throw fail("delta is 0") }
                let n = Swift.max(0, ((Double(l) - Double(s)) / Double(d)).rounded(.up))
                guard n <= Double(limit) else { throw fail("its output [\(n)] would hold more than \(limit) values") }
                return [.int64((0..<Int(n)).map { s &+ $0 &* d }, shape: [Int(n)])]
            }
            let s = Double(try scalarFloat(input(0), "start")), l = Double(try scalarFloat(input(1), "limit")), d = Double(try scalarFloat(input(2), "delta"))
            guard d != 0, s.isFinite, l.isFinite, d.isFinite else { throw fail("start \(s), limit \(l) and delta \(d) must be finite, delta not 0") }
            let n = Swift.max(0, ((l - s) / d).rounded(.up))
            guard n <= Double(limit) else { throw fail("its output [\(n)] would hold more than \(limit) values") }
            return [.float(Tensor((0..<Int(n)).map { Float(s + Double($0) * d) }, shape: [Int(n)]))]
        case "Split":
            guard let v = input(0) else { throw fail("missing input") }
            let r = v.shape.count
            guard r >= 1 else { throw fail("a scalar does not split") }
            let a = try axis(at.int("axis", 0), rank: r)
            let dim = v.shape[a], outs = node.output.count
            let given = try opset >= 13 ? input(1).map { try ints($0, "split") } : at.ints("split")
            var parts: [Int]
            if let given {
                guard given.count == outs, given.allSatisfy({ $0 >= 0 }), given.reduce(0, +) == dim else {
                    throw fail("split \(given) into \(outs) outputs does not add up to dimension \(a) of \(v.shape)")
                }
                parts = given
            } else {
                let n = at.int("num_outputs", outs)
                guard n >= 1, n == outs else { throw fail("num_outputs \(n) for \(outs) outputs") }
                // Equal parts, the last smaller when the size does not divide (opset 18's rule).
                let each = (dim + n - 1) / n
                parts = (0..<n).map { Swift.max(0, Swift.min(each, dim - $0 * each)) }
            }
            var start = 0
            return parts.map { len in
                var starts = [Int](repeating: 0, count: r), counts = v.shape
                starts[a] = start
                counts[a] = len
                start += len
                return strided(v, starts: starts, steps: [Int](repeating: 1, count: r), counts: counts)
            }
        case "Slice":
            guard let v = input(0) else { throw fail("missing input data") }
            let r = v.shape.count
            let starts: [Int], ends: [Int], axesGiven: [Int]?, stepsGiven: [Int]?
            if opset >= 10 {
                starts = try ints(input(1), "starts")
                ends = try ints(input(2), "ends")
                axesGiven = try input(3).map { try ints($0, "axes") }
                stepsGiven = try input(4).map { try ints($0, "steps") }
            } else {
                guard let s = at.ints("starts"), let e = at.ints("ends") else { throw fail("starts and ends are missing") }
                (starts, ends, axesGiven, stepsGiven) = (s, e, at.ints("axes"), nil)
            }
            let axes = try (axesGiven ?? Array(0..<starts.count)).map { try axis($0, rank: Swift.max(r, 1)) }
            let steps = stepsGiven ?? [Int](repeating: 1, count: starts.count)
            guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count, Set(axes).count == axes.count else {
                throw fail("starts \(starts), ends \(ends), axes \(axes) and steps \(steps) must be as many, axes distinct")
            }
            guard steps.allSatisfy({ $0 != 0 && Swift.abs($0) < 1 << 62 }) else { throw fail("steps \(steps) must be nonzero") }
            var first = [Int](repeating: 0, count: r), step = [Int](repeating: 1, count: r), counts = v.shape
            for (i, a) in axes.enumerated() {
                let dim = v.shape[a]
                var s = starts[i], e = ends[i]
                if s < 0 { s += dim }
                if e < 0 { e += dim }
                let st = steps[i]
                if st > 0 {
                    s = Swift.min(Swift.max(s, 0), dim)
                    e = Swift.min(Swift.max(e, 0), dim)
                    counts[a] = e > s ? (e - s + st - 1) / st : 0
                } else {   // backwards: start at most dim - 1, end down to -1 (the whole axis)
                    s = Swift.min(Swift.max(s, 0), dim - 1)
                    e = Swift.min(Swift.max(e, -1), dim - 1)
                    counts[a] = s > e ? (s - e - st - 1) / -st : 0
                }
                first[a] = counts[a] > 0 ? s : 0
                step[a] = st
            }
            return [strided(v, starts: first, steps: step, counts: counts)]
        case "Pow":
            guard let base = input(0), let e = input(1) else { throw fail("Pow takes X and Y") }
            if case .int64(let b, let sb) = base {   // the base's type is the output's
                let p = try float(e, "Y")
                let (v, s) = try zipped(b.map(Double.init), sb, p.scalars.map(Double.init), p.shape, limit: limit) { Foundation.pow($0, $1) }
                guard v.allSatisfy({ $0.isFinite && Swift.abs($0) < 9e18 }) else { throw fail("integer powers overflow int64") }
                return [.int64(v.map { Int($0.rounded(.towardZero)) }, shape: s)]
            }
            let b = try float(base, "X"), p = try float(e, "Y")
            let (v, s) = try zipped(b.scalars, b.shape, p.scalars, p.shape, limit: limit) { Foundation.pow($0, $1) }
            return [.float(Tensor(v, shape: s))]
        case "Neg":
            if case .int64(let i, let s)? = input(0) { return [.int64(i.map { 0 &- $0 }, shape: s)] }
            return [.float(try float(input(0), "X") * -1)]
        case "Exp": return [.float(try float(input(0), "X").exp())]
        case "Log": return [.float(try float(input(0), "X").log())]
        case "Expand":
            guard let v = input(0) else { throw fail("missing input") }
            let shape = try ints(input(1), "shape")
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("shape \(shape) has a negative size") }
            let out = try broadcast([v.shape, shape])
            try fits(out, limit)
            switch v {
            case .float(let t): return [.float(t.expand(out))]
            case .int64(let i, let s): return [.int64(sourceIndices(s, out).map { i[$0] }, shape: out)]
            }
        case "ConstantOfShape":
            let shape = try ints(input(0), "shape")
            guard input(0)!.shape.count == 1, shape.allSatisfy({ $0 >= 0 }) else { throw fail("shape \(shape) must be a vector of sizes") }
            try fits(shape, limit)
            let value = try at.tensor("value").map { try OnnxFile.value($0, source: source, folder: folder) } ?? .float(Tensor([0], shape: [1]))
            guard value.shape.reduce(1, *) == 1 else { throw fail("value must hold one element, not \(value.shape)") }
            switch value {
            case .float(let t): return [.float(Tensor.full(shape, t.scalars[0]))]
            case .int64(let i, _): return [.int64([Int](repeating: i[0], count: shape.reduce(1, *)), shape: shape)]
            }
        case "Clip":
            guard let v = input(0) else { throw fail("missing input") }
            if case .int64(let i, let s) = v {
                let lo = try input(1).map { try scalarInts($0, "min") } ?? Int.min, hi = try input(2).map { try scalarInts($0, "max") } ?? Int.max
                return [.int64(i.map { Swift.min(Swift.max($0, lo), hi) }, shape: s)]
            }
            let t = try float(v, "input")
            let lo = try opset >= 11 ? (input(1).map { try scalarFloat($0, "min") } ?? -.infinity) : at.float("min", -.infinity)
            let hi = try opset >= 11 ? (input(2).map { try scalarFloat($0, "max") } ?? .infinity) : at.float("max", .infinity)
            return [.float(Tensor(t.scalars.map { $0.isNaN ? $0 : Swift.min(Swift.max($0, lo), hi) }, shape: t.shape))]
        case "Pad":
            guard let v = input(0) else { throw fail("missing input data") }
            let r = v.shape.count
            let mode = at.string("mode") ?? "constant"
            guard ["constant", "edge", "reflect"].contains(mode) else { throw fail("pad mode \(mode) is not read (constant, edge and reflect are)") }
            let pads = try opset >= 11 ? ints(input(1), "pads") : (at.ints("pads") ?? [])
            let value = try opset >= 11 ? (input(2).map { try scalarFloat($0, "constant_value") } ?? 0) : at.float("value", 0)
            let axes = try (input(3).map { try ints($0, "axes") } ?? Array(0..<r)).map { try axis($0, rank: Swift.max(r, 1)) }
            guard pads.count == 2 * axes.count, Set(axes).count == axes.count else { throw fail("pads \(pads) for axes \(axes) of \(v.shape): need two per axis") }
            guard pads.allSatisfy({ Swift.abs($0) < 1 << 40 }) else { throw fail("pads \(pads) are out of range") }
            var widths = [(Int, Int)](repeating: (0, 0), count: r)
            for (k, a) in axes.enumerated() { widths[a] = (pads[k], pads[k + axes.count]) }
            let outShape = zip(v.shape, widths).map { $0 + $1.0 + $1.1 }
            guard outShape.allSatisfy({ $0 >= 0 }) else { throw fail("pads \(pads) crop more than \(v.shape) holds") }
            try fits(outShape, limit)
            // Per axis, the input index each output index reads (nil: the constant); negative
            // pads crop, edge repeats the border, reflect mirrors without repeating it.
            var maps: [[Int?]] = []
            for a in 0..<r {
                let d = v.shape[a], before = widths[a].0
                guard d > 0 || mode == "constant" || outShape[a] == 0 else { throw fail("\(mode) padding of an empty axis") }
                maps.append((0..<outShape[a]).map { j in
                    let i = j - before
                    if i >= 0 && i < d { return i }
                    switch mode {
                    case "edge": return Swift.min(Swift.max(i, 0), d - 1)
                    case "reflect":
                        guard d > 1 else { return 0 }
                        let period = 2 * (d - 1), m = ((i % period) + period) % period
                        return m < d ? m : period - m
                    default: return nil
                    }
                })
            }
            var strides = [Int](repeating: 1, count: r)
            for k in stride(from: r - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * v.shape[k + 1] }
            var source: [Int?] = []   // per output element, the input element (nil: the constant)
            source.reserveCapacity(outShape.reduce(1, *))
            func walk(_ k: Int, _ base: Int?) {
                if k == r { source.append(base); return }
                for i in maps[k] { walk(k + 1, base.flatMap { b in i.map { b + $0 * strides[k] } }) }
            }
            walk(0, 0)
            switch v {
            case .float(let t):
                let xs = t.scalars
                return [.float(Tensor(source.map { $0.map { xs[$0] } ?? value }, shape: outShape))]
            case .int64(let i, _):
                guard value == value.rounded(), Swift.abs(value) < 9e18 else { throw fail("constant_value \(value) is not an integer") }
                return [.int64(source.map { $0.map { i[$0] } ?? Int(value) }, shape: outShape)]
            }
        default:
            throw fail("an op Strata does not run")
        }
    }

    /// GRU (gates z, r, h) and LSTM (gates i, o, f, c) over a sequence, as ONNX defines them:
    /// forward, reverse or both directions, per-sequence lengths, initial states, layout 0 or 1.
    static func recurrent(_ node: Onnx_NodeProto, _ x: [OnnxValue?], at: Attributes, limit: Int) throws -> [OnnxValue] {
        func input(_ i: Int) -> OnnxValue? { i < x.count ? x[i] : nil }
        let lstm = node.opType == "LSTM", g = lstm ? 4 : 3
        let layout = at.int("layout", 0)
        guard layout == 0 || layout == 1 else { throw fail("layout \(layout) must be 0 or 1") }
        var xs = try float(input(0), "X")
        guard xs.rank == 3 else { throw fail("X \(xs.shape) must be [seq, batch, input]\(layout == 1 ? " (layout 1: [batch, seq, input])" : "")") }
        if layout == 1 { xs = xs.permute([1, 0, 2]) }
        let (tn, n, inSize) = (xs.shape[0], xs.shape[1], xs.shape[2])
        let dirName = at.string("direction") ?? "forward"
        guard ["forward", "reverse", "bidirectional"].contains(dirName) else { throw fail("direction \(dirName) must be forward, reverse or bidirectional") }
        let dirs = dirName == "bidirectional" ? 2 : 1
        let w = try float(input(1), "W"), r = try float(input(2), "R")
        guard w.rank == 3, w.shape[0] == dirs, w.shape[1] % g == 0, w.shape[1] > 0, w.shape[2] == inSize else {
            throw fail("W \(w.shape) must be [\(dirs), \(g) x hidden, \(inSize)]")
        }
        let h = at.int("hidden_size", w.shape[1] / g)
        guard h == w.shape[1] / g else { throw fail("hidden_size \(h) does not fit W \(w.shape) (\(g) gates)") }
        guard inSize > 0 else { throw fail("X \(xs.shape) has no input features") }
        guard r.shape == [dirs, g * h, h] else { throw fail("R \(r.shape) must be [\(dirs), \(g * h), \(h)]") }
        let b = try input(3).map { try float($0, "B") } ?? Tensor.zeros([dirs, 2 * g * h])
        guard b.shape == [dirs, 2 * g * h] else { throw fail("B \(b.shape) must be [\(dirs), \(2 * g * h)]") }
        let lens = try input(4).map { try ints($0, "sequence_lens") } ?? [Int](repeating: tn, count: n)
        guard lens.count == n, input(4).map({ $0.shape == [n] }) ?? true, lens.allSatisfy({ $0 >= 0 && $0 <= tn }) else {
            throw fail("sequence_lens \(input(4)?.shape ?? []) must be [\(n)] lengths of at most \(tn)")
        }
        func state(_ i: Int, _ what: String) throws -> [Float]? {
            guard let v = input(i) else { return nil }
            var s = try float(v, what)
            let want = layout == 0 ? [dirs, n, h] : [n, dirs, h]
            guard s.shape == want else { throw fail("\(what) \(s.shape) must be \(want)") }
            if layout == 1 { s = s.permute([1, 0, 2]) }
            return s.scalars
        }
        let h0 = try state(5, "initial_h"), c0 = lstm ? try state(6, "initial_c") : nil
        var peep: Tensor?
        if lstm, let p = input(7), p.shape.reduce(1, *) > 0 {
            let pt = try float(p, "P")
            guard pt.shape == [dirs, 3 * h] else { throw fail("P \(pt.shape) must be [\(dirs), \(3 * h)]") }
            peep = pt
        }
        let defaults = lstm ? ["sigmoid", "tanh", "tanh"] : ["sigmoid", "tanh"]
        if let acts = at.list.first(where: { $0.name == "activations" })?.strings.map({ String(decoding: $0, as: UTF8.self).lowercased() }) {
            guard acts.count == defaults.count * dirs || acts.count == defaults.count,
                  acts.enumerated().allSatisfy({ $0.element == defaults[$0.offset % defaults.count] }) else {
                throw fail("activations \(acts) are not read (only the default \(defaults.joined(separator: ", ")))")
            }
        }
        for k in ["clip", "activation_alpha", "activation_beta"] where at.list.contains(where: { $0.name == k }) {
            throw fail("the \(k) attribute is not read")
        }
        guard !lstm || at.int("input_forget", 0) == 0 else { throw fail("input_forget is not read") }
        try fits([tn, dirs, n, h], limit)
        try fits([tn * n, g * h], limit)

        let lbr = at.int("linear_before_reset", 0) != 0
        var y = [Float](repeating: 0, count: tn * dirs * n * h)
        var hLast = [Float](repeating: 0, count: dirs * n * h), cLast = hLast
        func sigm(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }
        let flatX = xs.reshape([tn * n, inSize])
        for d in 0..<dirs {
            let wd = w.indexSelect(axis: 0, indices: [d]).reshape([g * h, inSize])
            let rd = r.indexSelect(axis: 0, indices: [d]).reshape([g * h, h])
            let bs = b.indexSelect(axis: 0, indices: [d]).scalars
            let wb = Array(bs[0..<(g * h)]), rb = Array(bs[(g * h)...])
            let xw = tn * n == 0 ? [] : linear(flatX, weight: wd).scalars   // [T * N, g * H]: every step's input part at once
            let rh = lbr || lstm ? nil : rd.slice(axis: 0, start: 2 * h, end: 3 * h)   // GRU's candidate weights apply after the reset
            var hs = h0.map { Array($0[(d * n * h)..<((d + 1) * n * h)]) } ?? [Float](repeating: 0, count: n * h)
            var cs = c0.map { Array($0[(d * n * h)..<((d + 1) * n * h)]) } ?? [Float](repeating: 0, count: n * h)
            let pd = peep.map { $0.indexSelect(axis: 0, indices: [d]).scalars }
            let reverse = dirName == "reverse" || d == 1
            for s in 0..<tn {
                var active: [Int] = [], times: [Int] = []
                for j in 0..<n where s < lens[j] {
                    active.append(j)
                    times.append(reverse ? lens[j] - 1 - s : s)
                }
                if active.isEmpty { break }
                let hr = linear(Tensor(hs, shape: [n, h]), weight: rd).scalars   // [N, g * H]
                if lstm {
                    for (j, t) in zip(active, times) {
                        let xo = (t * n + j) * g * h, ho = j * g * h
                        for k in 0..<h {
                            func pre(_ gate: Int) -> Float { xw[xo + gate * h + k] + wb[gate * h + k] + hr[ho + gate * h + k] + rb[gate * h + k] }
                            let cp = cs[j * h + k]
                            let i = sigm(pre(0) + (pd?[k] ?? 0) * cp)
                            let f = sigm(pre(2) + (pd?[2 * h + k] ?? 0) * cp)
                            let c = f * cp + i * Foundation.tanh(pre(3))
                            let o = sigm(pre(1) + (pd?[h + k] ?? 0) * c)
                            cs[j * h + k] = c
                            hs[j * h + k] = o * Foundation.tanh(c)
                        }
                    }
                } else {
                    var z = [Float](repeating: 0, count: n * h), rr = z
                    for (j, t) in zip(active, times) {
                        let xo = (t * n + j) * g * h, ho = j * g * h
                        for k in 0..<h {
                            z[j * h + k] = sigm(xw[xo + k] + wb[k] + hr[ho + k] + rb[k])
                            rr[j * h + k] = sigm(xw[xo + h + k] + wb[h + k] + hr[ho + h + k] + rb[h + k])
                        }
                    }
                    // Without linear_before_reset the reset gate scales the state before R_h.
                    let reset = rh.map { linear(Tensor(zip(rr, hs).map { $0 * $1 }, shape: [n, h]), weight: $0).scalars }
                    for (j, t) in zip(active, times) {
                        let xo = (t * n + j) * g * h, ho = j * g * h
                        for k in 0..<h {
                            let rec = reset.map { $0[j * h + k] + rb[2 * h + k] } ?? rr[j * h + k] * (hr[ho + 2 * h + k] + rb[2 * h + k])
                            let cand = Foundation.tanh(xw[xo + 2 * h + k] + wb[2 * h + k] + rec)
                            let zk = z[j * h + k]
                            hs[j * h + k] = (1 - zk) * cand + zk * hs[j * h + k]
                        }
                    }
                }
                for (j, t) in zip(active, times) {
                    let yo = ((t * dirs + d) * n + j) * h
                    for k in 0..<h { y[yo + k] = hs[j * h + k] }
                }
            }
            for k in 0..<(n * h) {
                hLast[d * n * h + k] = hs[k]
                cLast[d * n * h + k] = cs[k]
            }
        }
        var yt = Tensor(y, shape: [tn, dirs, n, h]), ht = Tensor(hLast, shape: [dirs, n, h]), ct = Tensor(cLast, shape: [dirs, n, h])
        if layout == 1 {
            yt = yt.permute([2, 0, 1, 3])
            ht = ht.permute([1, 0, 2])
            ct = ct.permute([1, 0, 2])
        }
        return lstm ? [.float(yt), .float(ht), .float(ct)] : [.float(yt), .float(ht)]
    }

    /// ConvTranspose over 1-D or 2-D inputs (a 1-D one as 2-D over a height of 1). Symmetric pads
    /// with an output padding below the stride run as one `convTranspose2d`; other pads, and an
    /// `output_shape`, crop or extend the unpadded result with zeros, then add the bias.
    static func convTranspose(_ xv: OnnxValue?, _ wv: OnnxValue?, _ bv: OnnxValue?, at: Attributes, limit: Int) throws -> Tensor {
        var x = try float(xv, "X"), w = try float(wv, "W")
        let oneD = x.rank == 3 && w.rank == 3
        guard oneD || (x.rank == 4 && w.rank == 4) else { throw fail("Strata runs 1-D and 2-D transposed convolutions: X \(x.shape), W \(w.shape)") }
        guard !x.shape.contains(0), !w.shape.contains(0) else { throw fail("X \(x.shape) or W \(w.shape) is empty") }
        let group = at.int("group", 1)
        guard group >= 1, x.shape[1] == w.shape[0], w.shape[0] % group == 0 else {
            throw fail("X \(x.shape) and W \(w.shape) with group \(group) do not fit (W is [C, M/group, k...])")
        }
        let d = oneD ? 1 : 2, kernel = Array(w.shape.dropFirst(2))
        if let k = at.ints("kernel_shape"), k != kernel { throw fail("kernel_shape \(k) differs from W \(w.shape)") }
        let autoPad = try autoPadMode(at)
        let strides = at.ints("strides") ?? [Int](repeating: 1, count: d), dil = at.ints("dilations") ?? [Int](repeating: 1, count: d)
        let outPad = at.ints("output_padding") ?? [Int](repeating: 0, count: d)
        var pads = at.ints("pads") ?? [Int](repeating: 0, count: 2 * d)
        let small = { (v: Int) in v >= 0 && v < 1 << 16 }
        guard strides.count == d, dil.count == d, outPad.count == d, pads.count == 2 * d, strides.allSatisfy({ $0 >= 1 && $0 < 1 << 16 }),
              dil.allSatisfy({ $0 >= 1 && $0 < 1 << 16 }), pads.allSatisfy(small), outPad.allSatisfy(small) else {
            throw fail("strides \(strides), dilations \(dil), pads \(pads), output_padding \(outPad) are not valid \(d)-D ones")
        }
        let spatial = Array(x.shape.dropFirst(2))
        let full: [Int] = (0..<d).map { i -> Int in
            let span: Int = (kernel[i] - 1) * dil[i] + 1
            return (spatial[i] - 1) * strides[i] + span
        }
        // SAME: an output of size x stride, the odd pad at the end for SAME_UPPER (ONNX's rule).
        if autoPad.hasPrefix("SAME") && at.ints("output_shape") == nil {
            for i in 0..<d {
                (pads[i], pads[i + d]) = samePads(Swift.max(0, full[i] + outPad[i] - spatial[i] * strides[i]), autoPad)
            }
        } else if autoPad == "VALID" {
            pads = [Int](repeating: 0, count: 2 * d)
        }
        // Pads follow from an output_shape: ONNX's rule puts the larger half at the start, halving
        // by floor, so a negative total (an output longer than the natural one) extends the end
        // (onnxruntime's results; `conv_transpose_1d_output_shape` and ONNX's node tests).
        if let shape = at.ints("output_shape") {
            let out = shape.count == d + 2 ? Array(shape.dropFirst(2)) : shape
            guard out.count == d, out.allSatisfy({ $0 >= 1 && $0 < 1 << 24 }) else { throw fail("output_shape \(shape) is not \(d) sizes") }
            for i in 0..<d {
                let total = full[i] + outPad[i] - out[i], half = total >= 0 ? total / 2 : -((1 - total) / 2)
                (pads[i], pads[i + d]) = (total - half, half)
            }
        }
        let out: [Int] = (0..<d).map { i -> Int in full[i] - pads[i] - pads[i + d] + outPad[i] }
        let cout = w.shape[1] * group
        guard out.allSatisfy({ $0 >= 1 }) else { throw fail("pads \(pads) leave no output of X \(x.shape) and W \(w.shape)") }
        try fits([x.shape[0], cout] + out, limit)
        try fits([x.shape[0], cout] + full, limit)
        var bias: Tensor?
        if let bv {
            bias = try float(bv, "B")
            guard bias!.shape == [cout] else { throw fail("B \(bias!.shape) must be [\(cout)]") }
        }
        if oneD { (x, w) = (x.unsqueeze(2), w.unsqueeze(2)) }
        // 2-D settings, height first (a 1-D op's height is 1 with no padding).
        let (sh, dh, oph, top, bottom) = oneD ? (1, 1, 0, 0, 0) : (strides[0], dil[0], outPad[0], pads[0], pads[2])
        let (sw, dw, opw, left, right) = oneD ? (strides[0], dil[0], outPad[0], pads[0], pads[1]) : (strides[1], dil[1], outPad[1], pads[1], pads[3])
        var y: Tensor
        if top == bottom && left == right && oph < sh && opw < sw {
            y = convTranspose2d(x, weight: w, bias: bias, stride: Size2(sh, sw), padding: Size2(top, left), outputPadding: Size2(oph, opw),
                                dilation: Size2(dh, dw), groups: group)
        } else {
            y = convTranspose2d(x, weight: w, stride: Size2(sh, sw), dilation: Size2(dh, dw), groups: group)
            // Rows [top, top + count) of the unpadded output, zeros outside it (a negative pad from
            // output_shape); then the columns.
            for (axis, start, count) in [(2, top, y.shape[2] - top - bottom + oph), (3, left, y.shape[3] - left - right + opw)] {
                let size = y.shape[axis], lo = Swift.min(Swift.max(start, 0), size), hi = Swift.min(Swift.max(start + count, lo), size)
                y = y.slice(axis: axis, start: lo, end: hi)
                let before = Swift.min(Swift.max(-start, 0), count), after = count - before - (hi - lo)
                if before > 0 || after > 0 { y = y.pad((0..<4).map { $0 == axis ? (before, after) : (0, 0) }) }
            }
            if let bias { y = y + bias.reshape([1, cout, 1, 1]) }
        }
        return oneD ? y.squeeze(2) : y
    }
}
