import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class DataTests: XCTestCase {
    func testIDXPlainAndGzip() throws {
        let bytes = idxBytes([2, 2, 3], Array(0..<12))
        let plain = testTemp("a-idx3-ubyte")
        FileManager.default.createFile(atPath: plain, contents: Data(bytes))
        let a = try IDXArray(path: plain)
        XCTAssertEqual(a.shape, [2, 2, 3])
        XCTAssertEqual(a.bytes, Array(0..<12))
        let gz = testTemp("b-idx3-ubyte.gz")
        try writeGzip(bytes, to: gz)
        XCTAssertEqual(try IDXArray(path: gz).bytes, Array(0..<12))
    }

    func testTruncatedAndCorruptIDXFilesNameTheFile() throws {
        let truncated = testTemp("t-idx3-ubyte")
        FileManager.default.createFile(atPath: truncated, contents: Data(idxBytes([2, 2, 3], Array(0..<7))))
        XCTAssertThrowsError(try IDXArray(path: truncated)) { e in
            XCTAssert("\(e)".contains(truncated) && "\(e)".contains("truncated"), "\(e)")
        }
        let badMagic = testTemp("m-idx3-ubyte")
        FileManager.default.createFile(atPath: badMagic, contents: Data([1, 2, 8, 1, 0, 0, 0, 1, 5]))
        XCTAssertThrowsError(try IDXArray(path: badMagic)) { XCTAssert("\($0)".contains("not an IDX file"), "\($0)") }
        // A gzip stream cut in half.
        let gz = testTemp("c-idx3-ubyte.gz")
        try writeGzip(idxBytes([100, 100], (0..<10000).map { UInt8(($0 * 7919) % 251) }), to: gz)
        let data = try Data(contentsOf: URL(fileURLWithPath: gz))
        FileManager.default.createFile(atPath: gz, contents: data.prefix(data.count / 2))
        XCTAssertThrowsError(try IDXArray(path: gz)) { e in
            XCTAssert("\(e)".contains(gz) && ("\(e)".contains("truncated") || "\(e)".contains("corrupt")), "\(e)")
        }
    }

    func testMissingDatasetSaysHowToGetIt() {
        XCTAssertThrowsError(try FashionMNIST.load(.train, directory: "/nonexistent/fmnist")) { e in
            XCTAssert("\(e)".contains("/nonexistent/fmnist/train-images-idx3-ubyte"), "\(e)")
        }
        // Debian's location without the package: the message names the package.
        if !haveFashion {
            XCTAssertThrowsError(try FashionMNIST.load(.train)) { XCTAssert("\($0)".contains("apt-get install dataset-fashion-mnist"), "\($0)") }
        }
    }

    func testDatasetFromIDXFolder() throws {
        let dir = testTemp("mnistlike")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pixels = (0..<(5 * 4)).map { UInt8($0 * 10) }
        try writeGzip(idxBytes([5, 2, 2], pixels), to: dir + "/t10k-images-idx3-ubyte.gz")
        FileManager.default.createFile(atPath: dir + "/t10k-labels-idx1-ubyte", contents: Data(idxBytes([5], [3, 1, 4, 1, 5])))
        let d = try FashionMNIST.loadMNIST(.test, directory: dir)
        XCTAssertEqual(d.count, 5)
        XCTAssertEqual(d.imageShape, [1, 2, 2])
        let b = d.batch([1, 3])
        XCTAssertEqual(b.labels, [1, 1])
        XCTAssertEqual(b.inputs.shape, [2, 1, 2, 2])
        XCTAssert(b.inputs.allClose(Tensor([40, 50, 60, 70, 120, 130, 140, 150].map { Float($0) / 255 }, shape: [2, 1, 2, 2])))
        // Labels past the class count are rejected.
        FileManager.default.createFile(atPath: dir + "/t10k-labels-idx1-ubyte", contents: Data(idxBytes([5], [3, 1, 40, 1, 5])))
        XCTAssertThrowsError(try FashionMNIST.loadMNIST(.test, directory: dir)) { XCTAssert("\($0)".contains("label 40"), "\($0)") }
    }

    func testAppendingShiftsTheOtherClasses() {
        let a = LabeledImages(pixels: [1, 2, 3], labels: [0, 1, 1], imageShape: [1, 1, 1], classNames: ["x", "y"])
        let b = LabeledImages(pixels: [7, 8], labels: [1, 0], imageShape: [1, 1, 1], classNames: ["p", "q"])
        let c = a.appending(b)
        XCTAssertEqual(c.pixels, [1, 2, 3, 7, 8])
        XCTAssertEqual(c.labels, [0, 1, 1, 3, 2])
        XCTAssertEqual(c.classNames, ["x", "y", "p", "q"])
    }

    func testNormalisationIsPerChannel() {
        var d = LabeledImages(pixels: [0, 255, 51, 102], labels: [0], imageShape: [2, 1, 2], classNames: ["a"])
        d.normalization = Normalization(scale: 1 / 255, mean: [0.5, 0.2], std: [0.5, 0.1])
        XCTAssert(d.batch([0]).inputs.allClose(Tensor([-1, 1, 0, 2], shape: [1, 2, 1, 2]), rtol: 1e-5, atol: 1e-5))
    }

    func testLoaderShufflesWithASeedAndKeepsThePartialBatch() {
        let d = LabeledImages(pixels: (0..<10).map(UInt8.init), labels: Array(0..<10), imageShape: [1, 1, 1],
                              classNames: (0..<10).map(String.init))
        let loader = DataLoader(d, batchSize: 4, shuffle: true, seed: 7)
        let e0 = loader.epoch(0).map { $0.labels }
        XCTAssertEqual(e0.map { $0.count }, [4, 4, 2])
        XCTAssertEqual(e0.flatMap { $0 }.sorted(), Array(0..<10), "every example once per epoch")
        XCTAssertEqual(DataLoader(d, batchSize: 4, shuffle: true, seed: 7).epoch(0).map { $0.labels }, e0, "same seed, same order")
        XCTAssertNotEqual(loader.epoch(1).map { $0.labels }, e0, "each epoch reshuffles")
        XCTAssertNotEqual(DataLoader(d, batchSize: 4, shuffle: true, seed: 8).epoch(0).map { $0.labels }, e0)
        // LabeledImages' batches are cheap, made on the caller's thread; a source that does not say
        // so is prefetched.
        struct Prefetched: BatchSource {
            let d: LabeledImages
            var count: Int { d.count }
            func batch(_ indices: [Int]) -> Batch { d.batch(indices) }
        }
        XCTAssertTrue(d.batchesAreCheap)
        XCTAssertFalse(Prefetched(d: d).batchesAreCheap)
        let prefetched = DataLoader(Prefetched(d: d), batchSize: 4, shuffle: true, seed: 7)
        let noPrefetch = DataLoader(d, batchSize: 4, shuffle: true, seed: 7, prefetch: 0).epoch(0).map { $0.inputs.scalars }
        XCTAssertEqual(prefetched.epoch(0).map { $0.inputs.scalars }, noPrefetch, "prefetching changes nothing")
        XCTAssertEqual(loader.epoch(0).map { $0.inputs.scalars }, noPrefetch)
        for b in prefetched.epoch(2) { _ = b; break }
        XCTAssertEqual(DataLoader(d, batchSize: 4, dropLast: true).epoch(0).map { $0.labels.count }, [4, 4])
        XCTAssertEqual(DataLoader(d, batchSize: 3).epoch(0).map { $0.labels }, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]])
        // Stopping early does not hang (the producer thread is released).
        for b in loader.epoch(2) { _ = b; break }
    }
}
