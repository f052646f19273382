import Foundation
import XCTest
@testable import StrataCore
@testable import StrataData

/// A fresh temporary folder per test process.
func testTemp(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// Writes bytes gzip-compressed with the system's gzip (the tests never hand-roll deflate).
func writeGzip(_ bytes: [UInt8], to path: String) throws {
    FileManager.default.createFile(atPath: path + ".raw", contents: Data(bytes))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -c '\(path).raw' > '\(path)' && rm '\(path).raw'"]
    try p.run()
    p.waitUntilExit()
}

/// An IDX file of unsigned bytes.
func idxBytes(_ shape: [Int], _ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0, 0, 0x08, UInt8(shape.count)]
    for d in shape { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
    return out + data
}

/// Where the shared datasets live (../shared/data beside the checkout), or nil with a reason.
let sharedData: URL? = {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let d = repo.deletingLastPathComponent().appendingPathComponent("shared/data")
    return FileManager.default.fileExists(atPath: d.path) ? d : nil
}()

let fashionDir = "/usr/share/datasets/fashion-mnist"
var haveFashion: Bool { FileManager.default.fileExists(atPath: fashionDir + "/train-images-idx3-ubyte.gz") }

/// The `strata` binary built next to the tests (`make test` builds it).
var strataBinary: String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("strata").path
}

/// Runs `strata` with `args`: exit status, standard output, standard error. Skips the test when
/// the binary is not built.
func runStrata(_ args: [String]) throws -> (Int32, String, String) {
    guard FileManager.default.isExecutableFile(atPath: strataBinary) else {
        throw XCTSkip("\(strataBinary) is not built; run `swift build -c release` (make test does)")
    }
    return try runProcess(URL(fileURLWithPath: strataBinary), args)
}

/// Runs one test of this test binary (`"StrataTests.Class/testMethod"`) in a child process with
/// `env` added to the environment and Swift's backtraces off, for code that must stop the
/// process: exit status, standard output and standard error.
func runTestChild(_ test: String, env: [String: String]) throws -> (status: Int32, out: String, err: String) {
    var environment = ProcessInfo.processInfo.environment
    environment["SWIFT_BACKTRACE"] = "enable=no"
    environment.merge(env) { $1 }
    return try runProcess(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(), [test], environment: environment)
}

/// Runs `executable` to its end: exit status, standard output, standard error.
func runProcess(_ executable: URL, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A made-up face folder `root/p0 ... p{people-1}`, each with `photos` PNG files whose pixels
/// (interleaved channels) come from `pixel(person, photo, pixel index, rng)`. Replaces any old one.
func writePeopleFolder(_ root: String, people: Int, photos: Int, width: Int, height: Int, channels: Int, seed: UInt64,
                       pixel: (_ person: Int, _ photo: Int, _ k: Int, _ rng: inout RandomGenerator) -> UInt8) throws {
    try? FileManager.default.removeItem(atPath: root)
    var rng = RandomGenerator(seed: seed)
    for p in 0..<people {
        try FileManager.default.createDirectory(atPath: root + "/p\(p)", withIntermediateDirectories: true)
        for i in 0..<photos {
            let px = (0..<(width * height * channels)).map { pixel(p, i, $0, &rng) }
            try Image(width: width, height: height, channels: channels, pixels: px).savePNG(root + "/p\(p)/\(i).png")
        }
    }
}

/// The instruction sets this machine can run, best first: "avx512", "avx2", "generic" (as
/// lowered by STRATA_ISA, if set).
let machineISAs: [String] = {
    Strata.restrictKernels(to: nil)
    switch Strata.cpuKernel {
    case "avx512": return ["avx512", "avx2", "generic"]
    case "avx2": return ["avx2", "generic"]
    default: return ["generic"]
    }
}()

/// `body` once per instruction set of the machine, with the kernels held to it.
func forEachISA(_ body: (String) throws -> Void) rethrows {
    defer { Strata.restrictKernels(to: nil) }
    for isa in machineISAs {
        Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
        XCTAssertEqual(Strata.cpuKernel, isa)
        try body(isa)
    }
}
