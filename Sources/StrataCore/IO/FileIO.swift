import Foundation

/// A user-facing error: a missing or corrupt file, a bad argument. The message names the file
/// or argument and the problem; the command line prints it and exits with status 1.
public struct StrataError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// File helpers shared by the readers and writers.
public enum FileIO {
    /// Writes `data` to a temporary file beside `path`, then renames it over `path`, so a run
    /// killed mid-write never leaves a half-written file.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(path): folder \(dir.path) does not exist")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
            throw StrataError("\(path): cannot write (folder not writable or disk full)")
        }
        // fsync so the rename never exposes an empty file after a crash.
        let fd = open(tmp.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        if rename(tmp.path, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(tmp.path)
            throw StrataError("\(path): cannot replace file (\(reason))")
        }
    }
}
