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
    /// killed mid-write never leaves a half-written file. The temporary file is removed on
    /// failure and, in the command line, on SIGINT and SIGTERM; those that SIGKILL left behind
    /// (`.NAME.tmp-PID` of a process no longer running) are swept at this process's first write
    /// into their folder.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(path): folder \(dir.path) does not exist")
        }
        sweepStaleTemporaries(of: path)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let slot = TemporaryFiles.register(tmp.path)
        defer { TemporaryFiles.unregister(slot) }
        guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
            unlink(tmp.path)
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

    /// Folders already swept by this process: one sweep a folder is enough (listing the folder
    /// before every write made writing n files into it cost n listings).
    nonisolated(unsafe) private static var sweptFolders = Set<String>()
    private static let sweepLock = NSLock()

    /// Removes `.NAME.tmp-PID` files in `path`'s folder whose process is gone (killed
    /// mid-write), once per folder and process.
    static func sweepStaleTemporaries(of path: String) {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let first = sweepLock.withLock { sweptFolders.insert(dir).inserted }
        guard first, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(".") {
            guard let r = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[r.upperBound...]), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { unlink(dir + "/" + name) }
        }
    }

    /// Checks, before any work, that a command can write `path` (its `--out`): the folder exists,
    /// `path` is not a folder, and an existing file there is a safetensors file (a model it may
    /// replace), not something else that would be lost. `option` names the argument.
    public static func checkModelOutput(_ path: String, option: String = "--out") throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(option) \(path): folder \(dir) does not exist")
        }
        guard access(dir, W_OK) == 0 else { throw StrataError("\(option) \(path): folder \(dir) is not writable") }
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
        if isDir.boolValue { throw StrataError("\(option) \(path): is a folder") }
        guard isSafetensors(path) else {
            throw StrataError("\(option) \(path): exists and is not a model file (safetensors); remove it or choose another name")
        }
    }

    /// Whether the file starts like a safetensors file: an 8-byte little-endian header length
    /// that fits the file, then a JSON object.
    static func isSafetensors(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        guard let head = try? h.read(upToCount: 9), head.count == 9, head[8] == UInt8(ascii: "{") else { return false }
        let n = head.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
        return n >= 2 && n <= size - 8
    }
}

/// Temporary files being written, kept where a signal handler can read them (C strings in a
/// fixed buffer), so SIGINT or SIGTERM removes them before the process ends.
public enum TemporaryFiles {
    static let slots = 16, length = 4096
    nonisolated(unsafe) static let paths: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: slots * length)
        p.initialize(repeating: 0, count: slots * length)
        return p
    }()
    nonisolated(unsafe) static var lock = pthread_mutex_t()
    nonisolated(unsafe) static var lockReady: Void = { pthread_mutex_init(&lock, nil) }()

    /// Records `path`; returns its slot (-1 when all are taken or the path is too long).
    static func register(_ path: String) -> Int {
        let bytes = Array(path.utf8)
        guard bytes.count < length else { return -1 }
        _ = lockReady
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        for s in 0..<slots where paths[s * length] == 0 {
            let base = paths + s * length
            for (i, b) in bytes.enumerated().dropFirst() { base[i] = CChar(bitPattern: b) }
            base[bytes.count] = 0
            base[0] = CChar(bitPattern: bytes.first ?? 0)   // last: the slot is live once its first byte is set
            return s
        }
        return -1
    }

    static func unregister(_ slot: Int) {
        guard slot >= 0 else { return }
        pthread_mutex_lock(&lock)
        paths[slot * length] = 0
        pthread_mutex_unlock(&lock)
    }

    /// Makes SIGINT and SIGTERM remove the temporary files being written, then end the process
    /// as the signal would. For command-line programs; call once at start.
    public static func removeOnSignals() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { sig in
                // Only async-signal-safe calls here: unlink, signal, raise.
                for s in 0..<TemporaryFiles.slots where TemporaryFiles.paths[s * TemporaryFiles.length] != 0 {
                    unlink(TemporaryFiles.paths + s * TemporaryFiles.length)
                }
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }
}

extension StringProtocol {
    /// The lines of a text file, with Unix (`\n`), Windows (`\r\n`) or old Mac (`\r`) ends;
    /// a last line without an end counts, so `"a\n"` gives `["a", ""]`. (Swift reads `"\r\n"` as one
    /// character, so splitting on `"\n"` alone finds no line in a Windows file.)
    public func textLines() -> [SubSequence] {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
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
