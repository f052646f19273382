import Foundation
import SwiftProtobuf
import StrataCore

/// A value flowing through an imported ONNX graph: float32 data as a Strata tensor, or int64
/// data (shapes, axes, indices; int32 and bool read as it, bool as 0 and 1) as plain integers.
enum OnnxValue {
    case float(Tensor)
    case int64([Int], shape: [Int])

    var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int64(_, let s): return s
        }
    }
}

/// Reading an ONNX file: the protobuf parsed by swift-protobuf, then every size checked against
/// the file before anything is allocated by it (the reliability rules: data read from a file is
/// never trusted).
enum OnnxFile {
    /// Largest tensor an ONNX file may declare (1 GiB of float32), as for Strata's own files.
    static let maxElements = 1 << 28
    /// ONNX files larger than this are refused before being read (2 GiB: protobuf's own limit).
    static let maxFileBytes = Int(Int32.max)
    /// The opsets of the default domain the importer reads: each op follows its rule of the
    /// file's opset (Softmax's before 13, Squeeze's and Unsqueeze's axes, Shape's start and end).
    static let opsets = 7...20

    static func read(_ path: String) throws -> Onnx_ModelProto {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw StrataError("\(path): no such file") }
        guard !isDir.boolValue else { throw StrataError("\(path): is a folder, not an ONNX file") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maxFileBytes else { throw StrataError("\(path): \(size) bytes, over the 2 GiB an ONNX protobuf may hold (large weights go in external data)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw StrataError("\(path): cannot be read") }
        return try parse(data, name: path)
    }

    static func parse(_ data: Data, name: String) throws -> Onnx_ModelProto {
        let m: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            m = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw StrataError("\(name): not an ONNX model (the protobuf does not decode: \(error))")
        }
        guard m.hasGraph, !m.graph.node.isEmpty || !m.graph.output.isEmpty else {
            throw StrataError("\(name): not an ONNX model (no graph)")
        }
        let main = m.opsetImport.filter { $0.domain == "" || $0.domain == "ai.onnx" }
        guard let opset = main.map(\.version).max() else {
            throw StrataError("\(name): the model names no opset of ONNX's default domain")
        }
        guard opset <= Int64(opsets.upperBound) else {
            throw StrataError("\(name): opset \(opset) is newer than Strata reads (\(opsets.lowerBound) to \(opsets.upperBound))")
        }
        guard opset >= Int64(opsets.lowerBound) else {
            throw StrataError("\(name): opset \(opset) is older than Strata reads (\(opsets.lowerBound) to \(opsets.upperBound)); re-export it with opset_version=17")
        }
        return m
    }

    /// The elements of a tensor of `dims`, checked: no negative dimension, no overflow, at most
    /// `maxElements`.
    static func count(_ dims: [Int64], name: String, source: String) throws -> Int {
        for d in dims where d < 0 || d > Int64(maxElements) { throw StrataError("\(source): tensor \(name) has dimension \(d)") }
        guard let n = checkedProduct(dims.map { Int($0) }), n <= maxElements else {
            throw StrataError("\(source): tensor \(name) of shape \(dims) is larger than \(maxElements) values")
        }
        return n
    }

    /// An initializer or Constant's tensor as a value. `folder` is where external data is
    /// looked up (the ONNX file's folder).
    static func value(_ t: Onnx_TensorProto, source: String, folder: String) throws -> OnnxValue {
        let name = t.name.isEmpty ? "(unnamed)" : t.name
        let n = try count(t.dims, name: name, source: source)
        let shape = t.dims.map { Int($0) }
        guard let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) else {
            throw StrataError("\(source): tensor \(name) has an unknown data type \(t.dataType)")
        }
        var raw = t.rawData
        if t.dataLocation == .external {
            raw = try externalData(t, name: name, source: source, folder: folder)
        }
        switch type {
        case .float:
            if !raw.isEmpty || t.dataLocation == .external {
                guard raw.count == n * 4 else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n * 4) bytes, its data holds \(raw.count)") }
                let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(n)) }
                return .float(Tensor(values, shape: shape))
            }
            guard t.floatData.count == n else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n) floats, it holds \(t.floatData.count)") }
            return .float(Tensor(t.floatData, shape: shape))
        case .int64, .int32:
            let size = type == .int64 ? 8 : 4
            var ints: [Int]
            if !raw.isEmpty || t.dataLocation == .external {
                guard raw.count == n * size else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n * size) bytes, its data holds \(raw.count)") }
                ints = raw.withUnsafeBytes { b in
                    type == .int64 ? b.bindMemory(to: Int64.self).prefix(n).map { Int($0) } : b.bindMemory(to: Int32.self).prefix(n).map { Int($0) }
                }
            } else {
                ints = type == .int64 ? t.int64Data.map { Int($0) } : t.int32Data.map { Int($0) }
                guard ints.count == n else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n) integers, it holds \(ints.count)") }
            }
            return .int64(ints, shape: shape)
        case .bool:   // as int64 0 and 1, the form comparisons make
            if !raw.isEmpty || t.dataLocation == .external {
                guard raw.count == n else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n) bytes, its data holds \(raw.count)") }
                return .int64(raw.map { $0 != 0 ? 1 : 0 }, shape: shape)
            }
            guard t.int32Data.count == n else { throw StrataError("\(source): tensor \(name) of shape \(shape) needs \(n) booleans, it holds \(t.int32Data.count)") }
            return .int64(t.int32Data.map { $0 != 0 ? 1 : 0 }, shape: shape)
        default:
            throw StrataError("\(source): tensor \(name) is \(type), Strata reads float32, int64, int32 and bool tensors")
        }
    }

    /// The bytes of an external-data tensor: a file beside the model (no absolute path, no way
    /// out of its folder), at the stated offset and length, all checked against that file.
    static func externalData(_ t: Onnx_TensorProto, name: String, source: String, folder: String) throws -> Data {
        let entries = Dictionary(t.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let location = entries["location"], !location.isEmpty else {
            throw StrataError("\(source): tensor \(name) is stored outside the file but names no location")
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw StrataError("\(source): tensor \(name) points outside the model's folder (\(location))")
        }
        let path = (folder as NSString).appendingPathComponent(location)
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw StrataError("\(source): tensor \(name) is in \(path), which is missing (keep the external data file beside the .onnx file)")
        }
        defer { try? h.close() }
        let fileSize = Int((try? h.seekToEnd()) ?? 0)
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? (fileSize - max(offset, 0))
        guard offset >= 0, length >= 0, offset <= fileSize, length <= fileSize - offset else {
            throw StrataError("\(source): tensor \(name) is at bytes \(entries["offset"] ?? "0") + \(entries["length"] ?? "?") of \(path), which has \(fileSize)")
        }
        try h.seek(toOffset: UInt64(offset))
        return try h.read(upToCount: length) ?? Data()
    }
}
