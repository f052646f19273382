import Foundation
import StrataCore
import StrataNN

extension OnnxModel {
    /// The graph as Strata layers, where it is a chain of nodes that each map to one (Conv, Gemm,
    /// MatMul + Add, BatchNormalization, pooling, Flatten or a flattening Reshape, activations;
    /// Dropout and Identity dropped), so it trains and saves as a Strata model.
    ///
    /// ```swift
    /// let onnx = try OnnxModel(path: "fashion_cnn.onnx")        // from torch.onnx.export
    /// let model = try onnx.strataLayers()                      // Sequential(Conv2D, ReLU, ...)
    /// ```
    ///
    /// A node that has no Strata layer, or a graph that branches (residual sums), is named in the
    /// error: run such a file as it is (`OnnxModel`). The layers are checked against the graph on a
    /// seeded input before they are returned.
    public func strataLayers(tolerance: Float = 1e-4) throws -> Sequential {
        guard inputNames.count == 1 else { throw StrataError("\(source): the graph has \(inputNames.count) data inputs; Strata layers take one") }
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw StrataError("\(source): the graph does not state a fixed input shape, so its layers cannot be sized")
        }
        if dataInputs.first?.int64 == true {
            throw StrataError("\(source): the graph takes int64 ids (a text model); strata import converts chains of layers over float inputs only (run the .onnx file itself instead)")
        }
        // Every value's shape, from one run on a sample.
        let sample = Tensor.randn([2] + inputShape, seed: 0)
        let values = try run(feeds: [inputName: .float(sample)])
        // Values only a shape computation reads (Reshape's target) need no layer.
        var layers: [Module] = []
        var current = inputName
        var nodes = graph.node[...]
        func name(_ n: Onnx_NodeProto) -> String { n.name.isEmpty ? n.opType : n.name == n.opType ? n.name : "\(n.name) (\(n.opType))" }
        func constant(_ n: Onnx_NodeProto, _ i: Int) throws -> Tensor {
            guard i < n.input.count, case .float(let t)? = constants[n.input[i]] else {
                throw StrataError("\(source): node \(name(n)) reads \(i < n.input.count ? n.input[i] : "a missing input") as a weight, but it is not a stored float tensor")
            }
            return t
        }
        func shape(_ v: String) -> [Int] { values[v]?.shape ?? [] }
        while let n = nodes.popFirst() {
            let at = OnnxOps.Attributes(list: n.attribute)
            if n.opType == "Constant" { continue }
            guard n.input.first == current else {
                throw StrataError("\(source): node \(name(n)) does not take the output of the node before it as its first input (the graph branches or has no layer form there); strata import converts chains of layers only (run the .onnx file itself instead)")
            }
            let out = n.output.first ?? ""
            switch n.opType {
            case "ConvTranspose":
                let w = try constant(n, 1)
                let pads = at.ints("pads") ?? [0, 0, 0, 0], s = at.ints("strides") ?? [1, 1], op = at.ints("output_padding") ?? [0, 0]
                guard w.rank == 4, pads.count == 4, pads[0] == pads[2], pads[1] == pads[3], s.count == 2, op.count == 2, op[0] < s[0], op[1] < s[1],
                      at.ints("output_shape") == nil, (at.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                    throw StrataError("\(source): node \(name(n)) is not a 2-D transposed convolution with symmetric padding and an output padding below the stride")
                }
                let d = at.ints("dilations") ?? [1, 1], g = at.int("group", 1)
                let c = ConvTranspose2D(w.shape[0], w.shape[1] * g, kernelSize: Size2(w.shape[2], w.shape[3]), stride: Size2(s[0], s[1]),
                                        padding: Size2(pads[0], pads[1]), outputPadding: Size2(op[0], op[1]), dilation: Size2(d[0], d[1]),
                                        groups: g, bias: n.input.count > 2 && !n.input[2].isEmpty)
                c.weight.assign(w)
                if let bias = c.bias { bias.assign(try constant(n, 2)) }
                layers.append(c)
            case "Conv" where (try? constant(n, 1))?.rank == 3:
                let w = try constant(n, 1)
                let pads = at.ints("pads") ?? [0, 0]
                guard pads.count == 2, pads[0] == pads[1], (at.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                    throw StrataError("\(source): node \(name(n)) is not a 1-D convolution with symmetric padding")
                }
                let s = at.ints("strides") ?? [1], d = at.ints("dilations") ?? [1], g = at.int("group", 1)
                let c = Conv1D(w.shape[1] * g, w.shape[0], kernelSize: w.shape[2], stride: s[0], padding: pads[0], dilation: d[0],
                               groups: g, bias: n.input.count > 2 && !n.input[2].isEmpty)
                c.weight.assign(w)
                if let bias = c.bias { bias.assign(try constant(n, 2)) }
                layers.append(c)
            case "Conv":
                let w = try constant(n, 1)
                let pads = at.ints("pads") ?? [0, 0, 0, 0]
                guard w.rank == 4, pads.count == 4, pads[0] == pads[2], pads[1] == pads[3], (at.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                    throw StrataError("\(source): node \(name(n)) is not a 2-D convolution with symmetric padding")
                }
                let s = at.ints("strides") ?? [1, 1], d = at.ints("dilations") ?? [1, 1], g = at.int("group", 1)
                let c = Conv2D(w.shape[1] * g, w.shape[0], kernelSize: Size2(w.shape[2], w.shape[3]), stride: Size2(s[0], s[1]),
                               padding: Size2(pads[0], pads[1]), dilation: Size2(d[0], d[1]), groups: g, bias: n.input.count > 2 && !n.input[2].isEmpty)
                c.weight.assign(w)
                if let bias = c.bias { bias.assign(try constant(n, 2)) }
                layers.append(c)
            case "Gemm":
                guard at.int("transA", 0) == 0, at.float("alpha", 1) == 1, at.float("beta", 1) == 1 else {
                    throw StrataError("\(source): node \(name(n)) scales or transposes its input, which a Linear layer does not")
                }
                var w = try constant(n, 1)
                if at.int("transB", 0) == 0 { w = w.T }
                let hasBias = n.input.count > 2 && !n.input[2].isEmpty
                let l = Linear(w.shape[1], w.shape[0], bias: hasBias)
                l.weight.assign(w)
                if hasBias {
                    let b = try constant(n, 2)
                    guard b.count == w.shape[0] else { throw StrataError("\(source): node \(name(n)) has a bias of \(b.shape) for \(w.shape[0]) outputs") }
                    l.bias!.assign(b.reshape([w.shape[0]]))
                }
                layers.append(l)
            case "MatMul":
                let w = try constant(n, 1)
                guard w.rank == 2 else { throw StrataError("\(source): node \(name(n)) multiplies by a \(w.shape) tensor, not a weight matrix") }
                // A following Add of a stored vector is the bias.
                var bias: Tensor?
                var last = out
                if let next = nodes.first, next.opType == "Add", next.input.first == out, next.input.count == 2,
                   case .float(let b)? = constants[next.input[1]], b.count == w.shape[1] {
                    bias = b.reshape([w.shape[1]])
                    last = next.output.first ?? ""
                    nodes = nodes.dropFirst()
                }
                let l = Linear(w.shape[0], w.shape[1], bias: bias != nil)
                l.weight.assign(w.T)
                if let bias { l.bias!.assign(bias) }
                layers.append(l)
                current = last
                continue
            case "BatchNormalization":
                let rank = shape(out).count
                let (scale, b, mean, variance) = (try constant(n, 1), try constant(n, 2), try constant(n, 3), try constant(n, 4))
                let bn: BatchNorm = rank <= 3 ? BatchNorm1d(scale.count, eps: at.float("epsilon", 1e-5)) : BatchNorm2d(scale.count, eps: at.float("epsilon", 1e-5))
                guard (2...4).contains(rank) else { throw StrataError("\(source): node \(name(n)) normalises a rank-\(rank) tensor") }
                bn.weight.assign(scale); bn.bias.assign(b); bn.runningMean.assign(mean); bn.runningVar.assign(variance)
                layers.append(bn)
            case "MaxPool" where at.ints("kernel_shape")?.count == 1, "AveragePool" where at.ints("kernel_shape")?.count == 1:
                let k = at.ints("kernel_shape") ?? [], s = at.ints("strides") ?? [1], pads = at.ints("pads") ?? [0, 0]
                let dil = at.ints("dilations") ?? [1], ceilMode = at.int("ceil_mode", 0) != 0
                guard pads.count == 2, pads[0] == pads[1], 2 * pads[0] <= k[0], dil.count == 1, n.opType == "MaxPool" || dil == [1],
                      (at.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                    throw StrataError("\(source): node \(name(n)) is a pooling Strata's layers do not have (uneven padding, auto_pad or a dilated average)")
                }
                layers.append(n.opType == "MaxPool" ? MaxPool1D(k[0], stride: s[0], padding: pads[0], dilation: dil[0], ceilMode: ceilMode)
                    : AvgPool1D(k[0], stride: s[0], padding: pads[0], ceilMode: ceilMode, countIncludePad: at.int("count_include_pad", 0) != 0))
            case "MaxPool", "AveragePool":
                let k = at.ints("kernel_shape") ?? []
                let s = at.ints("strides") ?? [1, 1], pads = at.ints("pads") ?? [0, 0, 0, 0]
                let dil = at.ints("dilations") ?? [1, 1], ceilMode = at.int("ceil_mode", 0) != 0
                guard k.count == 2, pads.count == 4, pads[0] == pads[2], pads[1] == pads[3], 2 * pads[0] <= k[0], 2 * pads[1] <= k[1],
                      dil.count == 2, n.opType == "MaxPool" || dil == [1, 1], (at.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                    throw StrataError("\(source): node \(name(n)) is a pooling Strata's layers do not have (uneven padding, auto_pad or a dilated average)")
                }
                let (ks, ss, ps) = (Size2(k[0], k[1]), Size2(s[0], s[1]), Size2(pads[0], pads[1]))
                layers.append(n.opType == "MaxPool" ? MaxPool2D(ks, stride: ss, padding: ps, dilation: Size2(dil[0], dil[1]), ceilMode: ceilMode)
                    : AvgPool2D(ks, stride: ss, padding: ps, ceilMode: ceilMode, countIncludePad: at.int("count_include_pad", 0) != 0))
            case "ReduceMean", "ReduceMax":
                // A mean or maximum over every spatial axis (as the dynamo exporter writes adaptive
                // pooling to 1) is global pooling: [N, C, ...] to [N, C] or [N, C, 1, ...].
                let (from, to) = (shape(n.input[0]), shape(out))
                guard (3...4).contains(from.count), to.count >= 2, to.prefix(2) == from.prefix(2),
                      to.count == 2 || (to.count == from.count && to.dropFirst(2).allSatisfy({ $0 == 1 })) else {
                    throw StrataError("\(source): node \(name(n)) reduces \(from) to \(to); Strata's layers have it only over every spatial axis (global pooling)")
                }
                if to.count == 2 {
                    layers.append(n.opType == "ReduceMax" ? GlobalMaxPool() : GlobalAvgPool())
                    break
                }
                fallthrough
            case "GlobalAveragePool", "GlobalMaxPool":
                let isMax = n.opType == "GlobalMaxPool" || n.opType == "ReduceMax", rank = shape(out).count
                // Strata's GlobalAvgPool and GlobalMaxPool give [N, C]: the Flatten or Reshape after it goes with it.
                if let next = nodes.first, ["Flatten", "Reshape"].contains(next.opType), next.input.first == out,
                   shape(next.output.first ?? "").count == 2 {
                    layers.append(isMax ? GlobalMaxPool() : GlobalAvgPool())
                    current = next.output.first ?? ""
                    nodes = nodes.dropFirst()
                    continue
                }
                // Otherwise the pooled dimensions stay, of size 1: adaptive pooling to 1.
                switch rank {
                case 4: layers.append(isMax ? AdaptiveMaxPool2D(1) : AdaptiveAvgPool2D(1))
                case 3: layers.append(isMax ? AdaptiveMaxPool1D(1) : AdaptiveAvgPool1D(1))
                default: throw StrataError("\(source): node \(name(n)) pools a rank-\(rank) tensor; Strata's layers pool ranks 3 and 4")
                }
            case "Flatten", "Reshape":
                let s = shape(out)
                guard s.count == 2, n.opType == "Reshape" || at.int("axis", 1) == 1 else {
                    throw StrataError("\(source): node \(name(n)) reshapes to \(s), not to [N, features] as Flatten does")
                }
                layers.append(Flatten())
            case "Relu": layers.append(ReLU())
            case "Sigmoid": layers.append(Sigmoid())
            case "Tanh": layers.append(Tanh())
            case "LeakyRelu": layers.append(LeakyReLU(at.float("alpha", 0.01)))
            case "Softmax", "LogSoftmax":
                let r = shape(out).count, a = at.int("axis", -1)
                guard r == 2, a == -1 || a == 1 else { throw StrataError("\(source): node \(name(n)) is a \(n.opType) over axis \(a) of a rank-\(r) tensor; Strata's layer takes the last axis of [N, classes]") }
                layers.append(n.opType == "Softmax" ? Softmax() : LogSoftmax())
            case "Dropout", "Identity":
                break
            default:
                if n.input.dropFirst().contains(where: { !$0.isEmpty && constants[$0] == nil }) {
                    throw StrataError("\(source): node \(name(n)) joins two branches of the graph; strata import converts chains of layers only (run the .onnx file itself instead)")
                }
                throw StrataError("\(source): node \(name(n)) has no Strata layer; strata import converts \(Self.layerOps.joined(separator: ", ")) (run the .onnx file itself instead)")
            }
            current = out
        }
        guard current == outputName else {
            throw StrataError("\(source): the chain of layers ends at \(current), not at the graph's output \(outputName)")
        }
        let model = Sequential(layers)
        model.eval()
        let y = noGrad { model(sample) }
        guard case .float(let want)? = values[outputName], want.shape == y.shape else {
            throw StrataError("\(source): Strata's layers give \(y.shape), the graph \(values[outputName]?.shape ?? [])")
        }
        let diff = zip(want.scalars, y.scalars).reduce(Float(0)) { Swift.max($0, Swift.abs($1.0 - $1.1)) }
        guard diff <= tolerance * Swift.max(1, want.scalars.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) }) else {
            throw StrataError("\(source): Strata's layers differ from the graph by up to \(diff) on a sample input")
        }
        return model
    }

    /// The ops `strataLayers` maps to Strata layers.
    public static let layerOps = ["AveragePool", "BatchNormalization", "Constant", "Conv", "ConvTranspose", "Dropout", "Flatten", "Gemm", "GlobalAveragePool",
                                  "GlobalMaxPool", "Identity", "LeakyRelu", "LogSoftmax", "MatMul (+ Add)", "MaxPool", "ReduceMax", "ReduceMean", "Relu", "Reshape", "Sigmoid", "Softmax", "Tanh"]
}
