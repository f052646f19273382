import Foundation
import StrataCore

/// The safetensors format of PyTorch and Hugging Face: an 8-byte little-endian header length, a
/// JSON header (`name -> {dtype, shape, data_offsets}` plus an optional `__metadata__` map of
/// strings), then the raw little-endian tensor bytes.
///
/// ```swift
/// try Safetensors.write(["w": w], metadata: ["note": "hi"], to: "m.safetensors")
/// let (tensors, meta) = try Safetensors.read("m.safetensors")
/// ```
public enum Safetensors {
    /// Element sizes of the dtypes that can be read (all are converted to Float32).
    static let dtypeSizes: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    /// Writes F32 tensors (F16 with `half`: half the size, about 3 significant digits), sorted by
    /// name, to a temporary file that is then renamed over `path`.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], half: Bool = false, to path: String) throws {
        try FileIO.writeAtomically(encode(tensors, metadata: metadata, half: half), to: path)
    }

    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:], half: Bool = false) throws -> Data {
        let size = half ? 2 : 4
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": half ? "F16" : "F32", "shape": t.shape, "data_offsets": [offset, offset + size * t.count]] as [String: Any]
            offset += size * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!
            t.withUnsafeBufferPointer { buf in
                if half {
                    var h = [UInt16](repeating: 0, count: t.count)
                    for i in 0..<t.count { h[i] = floatToHalf(buf[i]).littleEndian }
                    h.withUnsafeBytes { out.append(contentsOf: $0) }
                } else {
                    buf.withMemoryRebound(to: UInt8.self) { out.append(contentsOf: UnsafeBufferPointer(start: $0.baseAddress, count: 4 * t.count)) }
                }
            }
        }
        return out
    }

    /// Reads every tensor (as Float32) and the metadata. A bad header, an offset outside the
    /// file, overlapping tensors or a size that does not match the shape throw an error naming
    /// the file.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else { throw StrataError("\(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw StrataError("\(path): cannot be read") }
        return try decode(data, name: path)
    }

    public static func decode(_ data: Data, name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw StrataError("\(name): not a safetensors file (only \(bytes.count) bytes)") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n > 0, n <= 100_000_000, Int(n) <= bytes.count - 8 else {
            throw StrataError("\(name): bad safetensors header: header length \(n) does not fit a file of \(bytes.count) bytes")
        }
        let headerEnd = 8 + Int(n)
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) } catch {
            throw StrataError("\(name): bad safetensors header: not valid JSON")
        }
        guard let header = object as? [String: Any] else { throw StrataError("\(name): bad safetensors header: not a JSON object") }
        let dataLen = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let mm = m as? [String: String] else { throw StrataError("\(name): bad safetensors header: __metadata__ must map strings to strings") }
            metadata = mm
        }
        // First the layout of every tensor, then the values: a damaged layout (a header length
        // off by one) is named as such, not as the odd values it shifts into the weights.
        var entries: [(key: String, dtype: String, shape: [Int], count: Int, begin: Int, end: Int)] = []
        for (key, value) in header where key != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offAny = info["data_offsets"] as? [Any], offAny.count == 2 else {
                throw StrataError("\(name): bad safetensors header: entry '\(key)' lacks dtype, shape or data_offsets")
            }
            guard let size = dtypeSizes[dtype] else { throw StrataError("\(name): tensor '\(key)' has unsupported dtype \(dtype)") }
            let shape = try shapeAny.map { v -> Int in
                guard let i = v as? Int, i >= 0 else { throw StrataError("\(name): tensor '\(key)' has a bad shape \(shapeAny)") }
                return i
            }
            let offs = try offAny.map { v -> Int in
                guard let i = v as? Int else { throw StrataError("\(name): tensor '\(key)' has bad data_offsets") }
                return i
            }
            let (b, e) = (offs[0], offs[1])
            guard b >= 0, b <= e, e <= dataLen else {
                throw StrataError("\(name): tensor '\(key)' has data_offsets [\(b), \(e)] outside the \(dataLen) data bytes")
            }
            // Checked: a hostile shape ([2^62, 2^62]) must not overflow into a small count.
            guard let count = checkedProduct(shape), case let (bytesNeeded, false) = count.multipliedReportingOverflow(by: size) else {
                throw StrataError("\(name): tensor '\(key)' has shape \(shape), too large to exist")
            }
            guard e - b == bytesNeeded else {
                throw StrataError("\(name): tensor '\(key)' has \(e - b) bytes but shape \(shape) of \(dtype) needs \(bytesNeeded)")
            }
            entries.append((key, dtype, shape, count, b, e))
        }
        entries.sort { $0.begin < $1.begin }
        for i in 1..<Swift.max(entries.count, 1) where entries[i].begin < entries[i - 1].end {
            throw StrataError("\(name): tensors '\(entries[i - 1].key)' and '\(entries[i].key)' overlap")
        }
        // The tensors must fill the data exactly, as the safetensors format requires: a gap or
        // trailing bytes mean a damaged file (a header length off by one shifts every weight).
        var end = 0
        for t in entries {
            guard t.begin == end else { throw StrataError("\(name): \(t.begin - end) bytes before tensor '\(t.key)' belong to no tensor (damaged file)") }
            end = t.end
        }
        guard end == dataLen else {
            throw StrataError("\(name): \(dataLen - end) trailing bytes after the last tensor (damaged or truncated header)")
        }
        var tensors: [String: Tensor] = [:]
        for entry in entries {
            let t = Tensor(uninitializedShape: entry.shape)
            bytes.withUnsafeBufferPointer { buf in
                convert(UnsafeRawPointer(buf.baseAddress! + headerEnd + entry.begin), dtype: entry.dtype, count: entry.count, into: t.data)
            }
            if let bad = (0..<entry.count).first(where: { !t.data[$0].isFinite }) {
                throw StrataError("\(name): tensor '\(entry.key)' holds \(t.data[bad].isNaN ? "NaN" : "infinite") values (element \(bad))")
            }
            tensors[entry.key] = t
        }
        return (tensors, metadata)
    }

    private static func convert(_ src: UnsafeRawPointer, dtype: String, count: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            switch dtype {
            case "F32": dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            case "F64": dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            case "F16": dst[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            case "BF16": dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
            case "I64": dst[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
            case "I32": dst[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            case "I16": dst[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            case "I8": dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self))
            default: dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self))
            }
        }
    }

    /// IEEE binary16 nearest to `f` (ties to even); beyond 65504 it is infinity, tiny values
    /// become subnormal or zero.
    static func floatToHalf(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xff), mant = bits & 0x7f_ffff
        if exp == 0xff { return sign | 0x7c00 | (mant != 0 ? 0x200 : 0) }     // inf, NaN
        let e = exp - 127 + 15
        if e >= 0x1f { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }
            // Subnormal: shift the mantissa (with its hidden bit) right, rounding to nearest even.
            let m = mant | 0x80_0000, shift = UInt32(14 - e)
            var h = m >> shift
            let rest = m & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            if rest > halfway || (rest == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rest = mant & 0x1fff
        if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) { h += 1 }     // a carry may reach infinity, as it should
        return sign | UInt16(h)
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        var exp = Int((h >> 10) & 0x1f)
        var mant = UInt32(h & 0x3ff)
        if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            while mant & 0x400 == 0 { mant <<= 1; exp -= 1 }
            exp += 1
            mant &= 0x3ff
        }
        return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
    }
}
