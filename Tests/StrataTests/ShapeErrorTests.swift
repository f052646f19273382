import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Incompatible shapes stop the process with a message naming the op and both shapes.
/// Each case runs in a child process (this test binary, filtered to `testChild`), because a
/// stop cannot be caught in-process.
final class ShapeErrorTests: XCTestCase {
    /// case name -> (code that must stop, words the message must contain)
    static let cases: [String: (() -> Void, [String])] = [
        "add": ({ _ = Tensor.zeros([2, 3]) + Tensor.zeros([4]) }, ["add", "[2, 3]", "[4]"]),
        "mul": ({ _ = Tensor.zeros([2, 3, 4]) * Tensor.zeros([3, 3]) }, ["mul", "[2, 3, 4]", "[3, 3]"]),
        "matmul": ({ _ = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5])) }, ["matmul", "[2, 3]", "[4, 5]"]),
        "matmul batch": ({ _ = Tensor.zeros([2, 3, 4]).matmul(Tensor.zeros([3, 4, 5])) }, ["matmul", "[2]", "[3]"]),
        "linear": ({ _ = linear(Tensor.zeros([8, 10]), weight: Tensor.zeros([3, 7])) }, ["linear", "[8, 10]", "[3, 7]"]),
        "conv2d": ({ _ = conv2d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 2, 3, 3])) }, ["conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]"]),
        "conv2d small": ({ _ = conv2d(Tensor.zeros([1, 1, 2, 2]), weight: Tensor.zeros([1, 1, 3, 3])) }, ["conv2d", "[1, 1, 2, 2]", "too small"]),
        // A window wider than the padded input with a stride above 1: the output size's numerator is
        // negative, and dividing it rounds towards zero, to an output of one.
        "conv2d small strided": ({ _ = conv2d(Tensor.zeros([1, 1, 2, 2]), weight: Tensor.zeros([1, 1, 3, 3]), stride: 2) },
                                 ["conv2d", "[1, 1, 2, 2]", "too small"]),
        "maxPool2d small": ({ _ = maxPool2d(Tensor.zeros([1, 1, 2, 2]), kernelSize: 3) }, ["maxPool2d", "[1, 1, 2, 2]", "too small"]),
        "avgPool2d small": ({ _ = avgPool2d(Tensor.zeros([1, 1, 5, 2]), kernelSize: 3) }, ["avgPool2d", "[1, 1, 5, 2]", "too small"]),
        "convTranspose2d": ({ _ = convTranspose2d(Tensor.zeros([1, 3, 4, 4]), weight: Tensor.zeros([2, 4, 3, 3])) },
                            ["convTranspose2d", "[1, 3, 4, 4]", "[2, 4, 3, 3]"]),
        "convTranspose2d output padding": ({ _ = convTranspose2d(Tensor.zeros([1, 2, 4, 4]), weight: Tensor.zeros([2, 4, 3, 3]), stride: 2, outputPadding: 2) },
                                           ["convTranspose2d", "output padding 2", "stride 2"]),
        "conv1d": ({ _ = conv1d(Tensor.zeros([2, 3, 8]), weight: Tensor.zeros([4, 2, 3])) }, ["conv1d", "[2, 3, 8]", "[4, 2, 3]"]),
        "conv1d rank": ({ _ = conv1d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 3, 3])) }, ["conv1d", "[N, C, L]", "[1, 3, 8, 8]"]),
        "maxPool1d small": ({ _ = maxPool1d(Tensor.zeros([1, 2, 2]), kernelSize: 3) }, ["maxPool1d", "[1, 2, 2]", "too small"]),
        // Ceil mode adds a partial window only where one full window fits.
        "maxPool2d ceil small": ({ _ = maxPool2d(Tensor.zeros([1, 1, 2, 2]), kernelSize: 3, stride: 2, ceilMode: true) },
                                 ["maxPool2d", "[1, 1, 2, 2]", "too small"]),
        "avgPool1d padding": ({ _ = avgPool1d(Tensor.zeros([1, 1, 8]), kernelSize: 2, padding: 2, countIncludePad: false) },
                              ["avgPool1d", "padding 2", "half the kernel"]),
        "adaptiveAvgPool2d rank": ({ _ = adaptiveAvgPool2d(Tensor.zeros([2, 3, 8]), outputSize: 2) }, ["adaptiveAvgPool2d", "NCHW", "[2, 3, 8]"]),
        "adaptiveMaxPool1d size": ({ _ = adaptiveMaxPool1d(Tensor.zeros([1, 2, 8]), outputSize: 0) }, ["adaptiveMaxPool1d", "[1, 2, 8]", "positive"]),
        "reshape": ({ _ = Tensor.zeros([2, 3]).reshape([4, 2]) }, ["reshape", "[2, 3]", "[4, 2]"]),
        "concat": ({ _ = Tensor.concat([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], axis: 1) }, ["concat", "[2, 3]", "[3, 3]"]),
        "where": ({ _ = Tensor.where(Tensor.zeros([2]), Tensor.zeros([3]), Tensor.zeros([1])) }, ["where", "[2]", "[3]"]),
        "expand": ({ _ = Tensor.zeros([3, 2]).expand([3, 4]) }, ["expand", "[3, 2]", "[3, 4]"]),
        "sum axis": ({ _ = Tensor.zeros([2, 3]).sum(axis: 2) }, ["sum", "axis 2"]),
        "backward twice": ({
            var x = Tensor([1]); x.requiresGrad = true
            let y = (x * x).sum(); y.backward(); y.backward()
        }, ["backward", "retainGraph"]),
    ]

    func testChild() {
        guard let name = ProcessInfo.processInfo.environment["STRATA_DEATH_CASE"],
              let (body, _) = Self.cases[name] else { return }
        body()
        print("STRATA_DEATH_CASE survived")
    }

    func testIncompatibleShapesStopWithAMessageNamingTheOpAndShapes() throws {
        for (name, (_, words)) in Self.cases.sorted(by: { $0.key < $1.key }) {
            let child = try runTestChild("StrataTests.ShapeErrorTests/testChild", env: ["STRATA_DEATH_CASE": name])
            let text = child.err + child.out
            XCTAssertNotEqual(child.status, 0, "\(name): the child did not stop")
            XCTAssertFalse(text.contains("STRATA_DEATH_CASE survived"), "\(name): computed a result instead of stopping")
            for w in words {
                XCTAssert(text.contains(w), "\(name): message lacks '\(w)':\n\(text.suffix(600))")
            }
        }
    }
}
