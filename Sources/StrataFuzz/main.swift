import Foundation

// strata-fuzz TARGET [libFuzzer flags] [corpus folders or files]
//
// One executable for every fuzz target (Targets.swift), so a build serves them all. The target is
// the first argument, or STRATA_FUZZ_TARGET when the first argument is a flag or a path.
//
// Built with -DSTRATA_FUZZ and -sanitize=fuzzer (`make fuzz`), main hands the remaining
// arguments to libFuzzer's LLVMFuzzerRunDriver. Built plainly (as `swift build` and `swift test`
// do), it replays the files or folders it is given, once each, and prints what each one gave:
// the way to rerun a crashing input in a debugger.

var arguments = CommandLine.arguments
let chosen: String?
if arguments.count > 1, FuzzTargets.all[arguments[1]] != nil {
    chosen = arguments.remove(at: 1)
} else {
    chosen = ProcessInfo.processInfo.environment["STRATA_FUZZ_TARGET"]
}

if arguments.count > 1, arguments[1] == "list" || arguments[1] == "--list" {
    print(FuzzTargets.names.joined(separator: "\n"))
    exit(0)
}

guard let name = chosen, let target = FuzzTargets.all[name] else {
    let given = chosen.map { "unknown target '\($0)'; " } ?? ""
    FileHandle.standardError.write(Data("strata-fuzz: \(given)usage: strata-fuzz TARGET [libFuzzer flags] [corpus...], TARGET one of: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
    exit(2)
}
FuzzTargets.selected = target
// libFuzzer's -fork and -jobs modes start copies of this process with the flags alone.
setenv("STRATA_FUZZ_TARGET", name, 1)

#if STRATA_FUZZ
// libFuzzer's own entry (compiler-rt FuzzerInterface.h): runs the fuzzing loop with its flags.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// libFuzzer keeps pointers into argv (it may re-execute itself with them), so they live forever.
var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
var argc = Int32(arguments.count)
let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        FuzzTargets.run(FuzzTargets.selected!, data, size)
    }
}
exit(status)
#else
// Replay: every file named, and every file in every folder named, once.
var files: [String] = []
for a in arguments.dropFirst() where !a.hasPrefix("-") {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: a, isDirectory: &isFolder) else {
        FileHandle.standardError.write(Data("strata-fuzz: \(a): no such file\n".utf8))
        exit(2)
    }
    if isFolder.boolValue {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: a)) ?? []
        files += names.sorted().map { (a as NSString).appendingPathComponent($0) }
    } else {
        files.append(a)
    }
}
for f in files {
    guard let data = FileManager.default.contents(atPath: f) else { continue }
    let outcome = data.withUnsafeBytes { FuzzTargets.outcome(target, $0.bindMemory(to: UInt8.self).baseAddress, data.count) }
    print("\(f): \(outcome)")
}
print("replayed \(files.count) input\(files.count == 1 ? "" : "s") through \(name) (a plain build: no sanitizers, no fuzzing)")
#endif
