import Foundation
import StrataCore
import StrataNN

/// An IDX array (the MNIST file format): a big-endian header of magic, dimension sizes, then data.
public struct IDXArray {
    public let shape: [Int]
    /// Unsigned-byte data (type 0x08), the format of every MNIST-style file.
    public let bytes: [UInt8]

    /// Reads `path`, plain or gzip-compressed. Truncated or malformed files throw an error that
    /// names the file and what is wrong.
    public init(path: String) throws {
        let raw = try FileIO.readMaybeGzip(path)
        try self.init(raw: raw, name: path)
    }

    public init(raw: [UInt8], name: String) throws {
        guard raw.count >= 4 else { throw StrataError("\(name): not an IDX file (only \(raw.count) bytes)") }
        guard raw[0] == 0, raw[1] == 0 else { throw StrataError("\(name): not an IDX file (bad magic number)") }
        guard raw[2] == 0x08 else {
            throw StrataError("\(name): IDX data type 0x\(String(raw[2], radix: 16)) is not supported (only unsigned bytes, 0x08)")
        }
        let ndim = Int(raw[3])
        guard ndim >= 1, ndim <= 4 else { throw StrataError("\(name): IDX file declares \(ndim) dimensions") }
        let headerLen = 4 + 4 * ndim
        guard raw.count >= headerLen else { throw StrataError("\(name): truncated IDX header") }
        var dims: [Int] = []
        for d in 0..<ndim {
            let o = 4 + 4 * d
            dims.append(Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3]))
        }
        guard let expected = checkedProduct(dims) else { throw StrataError("\(name): IDX shape \(dims) is too large to exist") }
        let have = raw.count - headerLen
        guard have >= expected else {
            throw StrataError("\(name): truncated IDX file: shape \(dims) needs \(expected) bytes of data, found \(have)")
        }
        guard have == expected else {
            throw StrataError("\(name): corrupt IDX file: shape \(dims) needs \(expected) bytes of data, found \(have)")
        }
        shape = dims
        bytes = Array(raw[headerLen...])
    }
}
