import CStrataIO
import Foundation
import StrataCore
import StrataNN

extension FileIO {
    /// The whole file, inflated if it is gzip-compressed.
    public static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw StrataError("\(path): no such file") }
        var ptr: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 512)
        if sio_read_maybe_gz(path, &ptr, &len, &err, err.count) != 0 {
            throw StrataError("\(path): \(String(cString: err))")
        }
        defer { sio_free(ptr) }
        return Array(UnsafeBufferPointer(start: ptr, count: len))
    }
}
