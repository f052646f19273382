import Foundation
import StrataCore
import StrataNN

/// Spoken-digit recordings turned into fixed-size log-mel images, as in the FSDD reference:
/// 8 kHz audio cropped or zero-padded to 8,192 samples, 40 HTK-mel bands, 100 frames, each band
/// standardised with the training set's statistics.
public struct AudioFeatures: Codable {
    public var sampleRate = 8000, nFFT = 256, hop = 80, bands = 40, length = 8192
    public var bandMean: [Float] = [], bandStd: [Float] = []

    public init() {}

    var mel: MelSpectrogram { MelSpectrogram(sampleRate: sampleRate, nFFT: nFFT, hop: hop, bands: bands) }

    /// `[1, bands, frames]` log-mel image of a recording (resampled to the feature rate first),
    /// before standardisation.
    public func image(_ audio: Audio) -> Tensor {
        var s = audio.resampled(to: sampleRate).samples
        if s.count > length { s = Array(s.prefix(length)) } else { s += [Float](repeating: 0, count: length - s.count) }
        let m = mel(s)
        return m.reshape([1] + m.shape)
    }

    /// Sets the per-band statistics from training images `[N, 1, bands, frames]`.
    public mutating func fit(_ images: Tensor) {
        let m = images.mean(axes: [0, 1, 3]), v = images.variance(axes: [0, 1, 3], unbiased: false)
        bandMean = m.scalars
        bandStd = v.scalars.map { $0.squareRoot() + 1e-6 }
    }

    public func standardize(_ images: Tensor) -> Tensor {
        noGrad { (images - Tensor(bandMean, shape: [1, 1, bands, 1])) / Tensor(bandStd, shape: [1, 1, bands, 1]) }
    }
}

public enum FSDD {
    /// Recordings `{digit}_{speaker}_{index}.wav` in sorted name order; index 0-4 is the official
    /// test set. Returns raw (unstandardised) log-mel images and labels.
    public static func load(_ dir: String, features: AudioFeatures = AudioFeatures()) throws
        -> (train: (Tensor, [Int]), test: (Tensor, [Int]), names: (train: [String], test: [String])) {
        let rec = (dir as NSString).appendingPathComponent("recordings")
        let files = try FileManager.default.contentsOfDirectory(atPath: rec).filter { $0.hasSuffix(".wav") }.sorted()
        guard !files.isEmpty else { throw StrataError("\(rec): no .wav recordings") }
        var tr: [Tensor] = [], te: [Tensor] = [], ytr: [Int] = [], yte: [Int] = [], ntr: [String] = [], nte: [String] = []
        for f in files {
            let parts = f.dropLast(4).split(separator: "_")
            guard parts.count == 3, let digit = Int(parts[0]), (0...9).contains(digit), let index = Int(parts[2]) else {
                throw StrataError("\((rec as NSString).appendingPathComponent(f)): name is not digit_speaker_index.wav")
            }
            let img = features.image(try Audio.loadWAV((rec as NSString).appendingPathComponent(f)))
            if index < 5 { te.append(img); yte.append(digit); nte.append(f) } else { tr.append(img); ytr.append(digit); ntr.append(f) }
        }
        return ((Tensor.stack(tr), ytr), (Tensor.stack(te), yte), (ntr, nte))
    }

    /// The reference's spectrogram CNN: three [conv 3x3, BatchNorm, ReLU, max pool 2] blocks of
    /// 16, 32, 64 channels, dropout 0.3, a linear layer to the 10 digits.
    public static func cnn(bands: Int = 40, frames: Int = 100) -> Sequential {
        var layers: [Module] = []
        var c = 1
        for w in [16, 32, 64] {
            layers += [Conv2D(c, w, kernelSize: 3, padding: 1), BatchNorm2d(w), ReLU(), MaxPool2D(2)]
            c = w
        }
        return Sequential(layers + [Flatten(), Dropout(0.3), Linear(64 * (bands / 8) * (frames / 8), 10)])
    }
}
