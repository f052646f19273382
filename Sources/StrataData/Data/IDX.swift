import Foundation
import StrataCore
import StrataNN

/// An IDX array (the MNIST file format): a big-endian header of magic, dimension sizes, then data.
public struct IDXArray {
    public let shape: [Int]
    /// Unsigned-byte data (type 0x08), the format of every MNIST-style file.
    public let bytes: [UInt8]

    /// Reads `path`, plain or gzip-compressed. Truncated or malformed files throw an error that
    /// names the file and what is wrong. The header is read first: a shape whose size overflows,
    /// or is over `InputLimits.current.maxDecompressedBytes`, is refused before the data is
    /// inflated; then no more than the shape's bytes (and one more, to see extra data) are.
    /// `InputLimits.current.maxDecompressedBytes` bounds what is allocated, plain or gzip.
    public init(path: String) throws {
        let limit = InputLimits.current.maxDecompressedBytes
        let head = try FileIO.readMaybeGzipPrefix(path, count: 4 + 4 * 4)
        let (dims, headerLen) = try IDXArray.header(head, name: path)
        guard let dataLen = checkedProduct(dims), case let (total, false) = headerLen.addingReportingOverflow(dataLen) else {
            throw StrataError("\(path): IDX shape \(dims) is too large to exist")
        }
        guard total <= limit else {
            throw StrataError("\(path): IDX header claims shape \(dims), \(total) bytes, over the limit of \(limit >> 20) MiB (set STRATA_MAX_DECOMPRESSED_MB to change it)")
        }
        // total < limit <= 2^60: total + 1 cannot overflow.
        let raw = try FileIO.readMaybeGzipPrefix(path, count: total + 1)
        try self.init(raw: raw, name: path)
    }

    public init(raw: [UInt8], name: String) throws {
        let (dims, headerLen) = try IDXArray.header(raw, name: name)
        guard let expected = checkedProduct(dims) else { throw StrataError("\(name): IDX shape \(dims) is too large to exist") }
        let have = raw.count - headerLen
        guard have >= expected else {
            throw StrataError("\(name): truncated IDX file: shape \(dims) needs \(expected) bytes of data, found \(have)")
        }
        guard have == expected else {
            throw StrataError("\(name): corrupt IDX file: shape \(dims) needs \(expected) bytes of data, and more follow")
        }
        shape = dims
        bytes = Array(raw[headerLen...])
    }

    /// The dimensions a header declares and the header's length; `raw` may hold only the start
    /// of the file.
    static func header(_ raw: [UInt8], name: String) throws -> (dims: [Int], length: Int) {
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
        return (dims, headerLen)
    }
}
