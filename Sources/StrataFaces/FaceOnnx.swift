import Foundation
import StrataCore
import StrataNN
import StrataONNX

/// The face networks as ONNX graphs. An embedding network's graph gives what `embedding(_:)`
/// gives: the features of the image and of its mirror image, summed and L2-normalised, so a
/// runtime compares faces by the distance of its outputs as Strata does.
enum FaceOnnx {
    static let embeddingNote = "face images [N, C, H, W], normalised as strata.normalization says; the output is the unit-length embedding (image and mirror image summed)"

    /// The network's unnormalised features of `x`.
    static func features(_ net: Module, _ b: OnnxGraphBuilder, _ x: String, path: String) throws -> String {
        switch net {
        case let f as FaceNet: return try Onnx.emit(f.embed, b, x, path: path + ".embed")
        case let d as DlibResNet: return try d.emitFeatures(b, x, path: path)
        default: throw StrataError("ONNX export: face network \(path) (\(net.typeName)) has no ONNX form yet")
        }
    }

    /// `x` [N, C, H, W] -> unit embeddings [N, D]: the features of x and of x mirrored, summed.
    static func embedding(_ net: Module, _ b: OnnxGraphBuilder, _ x: String, path: String) throws -> String {
        let both = b.op("Concat", [x, OnnxBlocks.flippedHorizontally(b, x)], [OnnxAttribute.int("axis", 0)], base: "views")   // [2N, ...]
        let halves = b.node("Split", [try features(net, b, both, path: path)], outputs: 2, [OnnxAttribute.int("axis", 0)], base: "views")
        return OnnxBlocks.l2Normalized(b, b.op("Add", [halves[0], halves[1]], base: "views"))
    }
}

extension FaceNet: OnnxExportable {
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { [OnnxInput(name: "input", dims: inputShape)] }
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        try FaceOnnx.embedding(self, b, inputs[0], path: path)
    }
    public func onnxReference(_ inputs: [Tensor]) -> Tensor { embedding(inputs[0]) }
    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] { [Tensor.randn([count] + inputShape, seed: seed)] }
    public var onnxMetadata: [String: String] { ["strata.input": FaceOnnx.embeddingNote] }
}

extension DlibResNet: OnnxExportable {
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { [OnnxInput(name: "input", dims: inputShape)] }
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        try FaceOnnx.embedding(self, b, inputs[0], path: path)
    }
    public func onnxReference(_ inputs: [Tensor]) -> Tensor { embedding(inputs[0]) }
    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        // Pixels as the model takes them: (p - mean) / 256, within about ±0.5.
        [Tensor.rand([count] + inputShape, low: -0.5, high: 0.5, seed: seed)]
    }
    public var onnxMetadata: [String: String] { ["strata.input": FaceOnnx.embeddingNote] }

    /// x [N, 3, 150, 150] -> features [N, 128], as `forward`.
    func emitFeatures(_ b: OnnxGraphBuilder, _ x: String, path: String) throws -> String {
        func scaled(_ a: ChannelAffine, _ h: String) -> String {
            let c = a.weight.value.count
            let scaled = b.op("Mul", [h, b.weight(a.weight.value.reshape([1, c, 1, 1]), "affine.weight")], base: "affine")
            return b.op("Add", [scaled, b.weight(a.bias.value.reshape([1, c, 1, 1]), "affine.bias")], base: "affine")
        }
        var h = b.op("Relu", [scaled(affine, try Onnx.emit(conv, b, x, path: path + ".conv"))], base: "relu")
        h = b.op("MaxPool", [h], [OnnxAttribute.ints("kernel_shape", [3, 3]), OnnxAttribute.ints("strides", [2, 2])], base: "maxpool")
        // Spatial sizes, to pad the shorter branch of a residual sum as Strata does.
        var size = (inputShape[1] - 7) / 2 + 1
        size = (size - 3) / 2 + 1
        for (i, block) in blocks.enumerated() {
            let p = "\(path).blocks.\(i)"
            var y = b.op("Relu", [scaled(block.affine1, try Onnx.emit(block.conv1, b, h, path: p + ".conv1"))], base: "relu")
            y = scaled(block.affine2, try Onnx.emit(block.conv2, b, y, path: p + ".conv2"))
            var skip = h
            if block.downsample {
                skip = b.op("AveragePool", [h], [OnnxAttribute.ints("kernel_shape", [2, 2]), OnnxAttribute.ints("strides", [2, 2])], base: "avgpool")
                // The shorter branch grows with zeros to the longer one (channels and sides), as
                // Strata's zero-padded sum.
                let convSize = (size - 3) / 2 + 1, poolSize = (size - 2) / 2 + 1
                let grown = Swift.max(convSize, poolSize)
                let (cin, cout) = (block.conv1.inChannels, block.conv1.outChannels)
                func pad(_ t: String, channels: Int, side: Int) -> String {
                    guard channels < Swift.max(cin, cout) || side < grown else { return t }
                    let (dc, ds) = (Int64(Swift.max(cin, cout) - channels), Int64(grown - side))
                    return b.op("Pad", [t, b.int64s([0, 0, 0, 0, 0, dc, ds, ds], "pads"), b.weight(Tensor([0], shape: []), "pad.value")], base: "pad")
                }
                y = pad(y, channels: cout, side: convSize)
                skip = pad(skip, channels: cin, side: poolSize)
                size = grown
            }
            h = b.op("Relu", [b.op("Add", [y, skip], base: "residual")], base: "relu")
        }
        let pooled = b.op("ReduceMean", [h], [OnnxAttribute.ints("axes", [2, 3]), OnnxAttribute.int("keepdims", 0)], base: "pool")
        return try Onnx.emit(fc, b, pooled, path: path + ".fc")
    }
}

extension FaceEnsemble: OnnxExportable {
    /// One input where the networks share an input shape, else one per network (`input_K`, its
    /// own crop: the model file's `face_members`).
    var sharesInput: Bool { Set(nets.map(\.inputShape)).count == 1 }

    public func onnxInputs(info: ModelInfo) -> [OnnxInput] {
        sharesInput ? [OnnxInput(name: "input", dims: nets[0].inputShape)]
            : nets.enumerated().map { OnnxInput(name: "input_\($0)", dims: $1.inputShape) }
    }

    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        let parts = try members.enumerated().map { k, net in
            try FaceOnnx.embedding(net, b, inputs[sharesInput ? 0 : k], path: "\(path).members.\(k)")
        }
        guard parts.count > 1 else { return parts[0] }
        let joined = b.op("Concat", parts, [OnnxAttribute.int("axis", 1)], base: "ensemble")
        return b.op("Mul", [joined, b.scalar(1 / Float(parts.count).squareRoot(), "ensemble.scale")], base: "ensemble")
    }

    public func onnxReference(_ inputs: [Tensor]) -> Tensor {
        FaceEnsemble.join(nets.enumerated().map { k, net in net.embedding(inputs[sharesInput ? 0 : k]) })
    }

    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        (sharesInput ? [nets[0]] : nets).enumerated().map { k, net in Tensor.randn([count] + net.inputShape, seed: seed &+ k) }
    }

    public var onnxMetadata: [String: String] {
        ["strata.input": sharesInput ? FaceOnnx.embeddingNote
            : "one face crop per network (input_K: network K's crop and size, strata.face_members); " + FaceOnnx.embeddingNote]
    }
}

extension FaceDetectorNet: OnnxExportable {
    /// x [N, 3, H, W] -> [N, 4, cells of the three levels], as `forward`.
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        let f8 = try Onnx.emit(level8, b, try Onnx.emit(stem, b, inputs[0], path: path + ".stem"), path: path + ".level8")
        let f16 = try Onnx.emit(level16, b, f8, path: path + ".level16")
        let f32 = try Onnx.emit(level32, b, f16, path: path + ".level32")
        let cells = b.int64s([0, 4, -1], "cells")
        let outs = try [(head8, f8, "head8"), (head16, f16, "head16"), (head32, f32, "head32")].map { head, f, name in
            b.op("Reshape", [try Onnx.emit(head, b, f, path: "\(path).\(name)"), cells], base: "cells")
        }
        return b.op("Concat", outs, [OnnxAttribute.int("axis", 2)], base: "cells")
    }
    public var onnxMetadata: [String: String] {
        ["strata.output": "per cell of the stride-8, 16 and 32 grids (row-major, in that order): a face score logit and the box offsets"]
    }
}
