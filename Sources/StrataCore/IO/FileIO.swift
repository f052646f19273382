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
    /// Runs `body` holding an exclusive lock (`flock`) on `PATH.lock`, a file beside `path`, so
    /// processes that read, change and rewrite `path` take turns. The lock is on a file of its
    /// own because `writeAtomically` replaces `path`'s inode, which would drop a lock held on it.
    ///
    /// ```swift
    /// try FileIO.withLock(beside: "gallery.json") { /* read, change, writeAtomically */ }
    /// ```
    public static func withLock<T>(beside path: String, _ body: () throws -> T) throws -> T {
        let lockPath = path + ".lock"
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(path): folder \(dir) does not exist")
        }
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StrataError("\(lockPath): cannot open the lock file (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StrataError("\(lockPath): cannot lock (\(String(cString: strerror(errno))))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

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

/// The product of sizes read from a file, or nil when it overflows or a size is negative:
/// parsers size nothing by a header they have not checked this way.
public func checkedProduct(_ dims: [Int]) -> Int? {
    var n = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}
