import Foundation
import StrataCore
import StrataNN

/// A small single-shot, anchor-free face detector in the style of YuNet and FCOS: a plain
/// strided CNN whose feature maps at strides 8, 16 and 32 each predict, per cell, a face score
/// (a logit) and one square box (centre offset in strides, log of the side in strides).
///
/// The output of a `[N, 3, H, W]` batch (H, W multiples of 32) is `[N, 4, cells]`: the three
/// levels' cells, row-major, concatenated (stride 8 first). Channel 0 is the score logit,
/// 1 and 2 the box centre's offset from the cell centre in strides, 3 the log of its side in strides.
///
/// ```swift
/// let net = FaceDetectorNet(configuration: .init())       // about 150 k parameters
/// let out = net(x)                                       // [N, 4, (H/8·W/8 + H/16·W/16 + H/32·W/32)]
/// ```
public final class FaceDetectorNet: Module, ConfigurableModule {
    public struct Configuration: Codable, Equatable {
        /// Channels of the stem, the stride-4 stage and the three levels.
        public var widths: [Int] = [8, 16, 32, 64, 64]
        public init() {}
    }
    public static let strides = [8, 16, 32]

    public let configuration: Configuration
    let stem: Sequential, level8: Sequential, level16: Sequential, level32: Sequential
    let head8: Sequential, head16: Sequential, head32: Sequential

    public init(configuration: Configuration) throws {
        let w = configuration.widths
        guard w.count == 5, w.allSatisfy({ $0 > 0 && $0 <= 1024 }) else {
            throw StrataError("FaceDetectorNet: widths must be 5 sizes in 1...1024, got \(w)")
        }
        self.configuration = configuration
        func block(_ i: Int, _ o: Int, stride: Int) -> [Module] {
            [Conv2D(i, o, kernelSize: 3, stride: Size2(stride, stride), padding: 1, bias: false), BatchNorm2d(o), ReLU()]
        }
        func head(_ c: Int) -> Sequential {
            let out = Conv2D(c, 4, kernelSize: 3, padding: 1)
            // Score prior 0.01, as RetinaNet and FCOS start, so the many empty cells do not swamp the first steps.
            out.bias!.assign(Tensor([-4.6, 0, 0, 0], shape: [4]))
            return Sequential([Conv2D(c, c, kernelSize: 1, bias: false), BatchNorm2d(c), ReLU(), out])
        }
        stem = Sequential(block(3, w[0], stride: 2) + block(w[0], w[1], stride: 2))                 // /4
        level8 = Sequential(block(w[1], w[2], stride: 2) + block(w[2], w[2], stride: 1))            // /8
        level16 = Sequential(block(w[2], w[3], stride: 2) + block(w[3], w[3], stride: 1))           // /16
        level32 = Sequential(block(w[3], w[4], stride: 2) + block(w[4], w[4], stride: 1))           // /32
        head8 = head(w[2]); head16 = head(w[3]); head32 = head(w[4])
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == 3 && x.shape[2] % 32 == 0 && x.shape[3] % 32 == 0,
                     "FaceDetectorNet: needs [N, 3, H, W] with H and W multiples of 32, got \(x.shape)")
        let f8 = level8(stem(x)), f16 = level16(f8), f32 = level32(f16)
        let n = x.shape[0]
        let outs = [head8(f8), head16(f16), head32(f32)].map { $0.reshape([n, 4, $0.shape[2] * $0.shape[3]]) }
        return Tensor.concat(outs, axis: 2)
    }

    /// Cells per level for an `h` x `w` input.
    public static func grid(height h: Int, width w: Int) -> [(stride: Int, rows: Int, cols: Int)] {
        strides.map { ($0, h / $0, w / $0) }
    }
}
