import CStrataIO
import Foundation
import StrataCore
import StrataNN

/// The limits every reader of pictures, compressed data and recordings checks before it
/// allocates: read once per process from the environment by CStrataIO (`sio_limits`, the one
/// place that reads them). docs/LIMITS.md states the defaults, why, and what they cost.
///
/// | variable | default | bounds |
/// |---|---|---|
/// | `STRATA_MAX_IMAGE_PIXELS` | 50,000,000 | pixels of one decoded picture |
/// | `STRATA_MAX_DECOMPRESSED_MB` | 192 | MiB a gzip (IDX) file inflates to |
/// | `STRATA_MAX_JPEG_SCANS` | 256 | scans of a progressive JPEG |
/// | `STRATA_MAX_AUDIO_SECONDS` | 600 | seconds of one WAV recording |
///
/// libjpeg's own buffers are capped at 6 bytes a pixel of the pixel limit, and 16 MiB more.
public struct InputLimits: Sendable {
    public let maxImagePixels: Int
    public let maxDecompressedBytes: Int
    public let maxJPEGScans: Int
    public let maxAudioSeconds: Int

    /// The limits in force for this process.
    public static var current: InputLimits {
        let l = sio_limits().pointee
        return InputLimits(maxImagePixels: Int(clamping: l.max_image_pixels), maxDecompressedBytes: Int(clamping: l.max_decompressed_bytes),
                           maxJPEGScans: Int(l.max_jpeg_scans), maxAudioSeconds: Int(l.max_audio_seconds))
    }

    /// `maxDecompressedBytes` in MiB, as its variable gives it.
    public var maxDecompressedMiB: Int { maxDecompressedBytes >> 20 }
}

extension FileIO {
    /// The whole file, inflated if it is gzip-compressed; more than `maxBytes` bytes (default
    /// `InputLimits.current.maxDecompressedBytes`) once inflated is an error naming the file and
    /// the limit, found as soon as the output passes it.
    public static func readMaybeGzip(_ path: String, maxBytes: Int? = nil) throws -> [UInt8] {
        try checkReadableFile(path)
        let limit = maxBytes ?? InputLimits.current.maxDecompressedBytes
        var ptr: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 512)
        if sio_read_maybe_gz(path, UInt64(Swift.max(0, limit)), &ptr, &len, &err, err.count) != 0 {
            throw StrataError("\(path): \(String(cString: err))")
        }
        defer { sio_free(ptr) }
        return Array(UnsafeBufferPointer(start: ptr, count: len))
    }

    /// The first `count` bytes (all of them when the data is shorter) of a file after inflating;
    /// memory grows with the data read, not with `count`.
    public static func readMaybeGzipPrefix(_ path: String, count: Int) throws -> [UInt8] {
        try checkReadableFile(path)
        var ptr: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 512)
        if sio_read_maybe_gz_prefix(path, UInt64(Swift.max(0, count)), &ptr, &len, &err, err.count) != 0 {
            throw StrataError("\(path): \(String(cString: err))")
        }
        defer { sio_free(ptr) }
        return Array(UnsafeBufferPointer(start: ptr, count: len))
    }

    private static func checkReadableFile(_ path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw StrataError("\(path): no such file") }
        if isFolder.boolValue { throw StrataError("\(path): is a folder, not a file") }
    }
}
