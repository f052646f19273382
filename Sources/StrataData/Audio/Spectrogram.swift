import Foundation
import StrataCore
import StrataNN

/// Log-mel spectrograms: a periodic Hann window, frames without centring, the power spectrum by a
/// DFT (computed as one GEMM against a cosine/sine basis), HTK-mel triangular filters.
///
/// ```swift
/// let mel = MelSpectrogram(sampleRate: 8000, nFFT: 256, hop: 80, bands: 40)
/// let s = mel(audio.samples)        // [40, frames], log(mel power + 1e-6)
/// ```
public struct MelSpectrogram {
    public let sampleRate: Int, nFFT: Int, hop: Int, bands: Int
    let window: [Float]
    let basis: Tensor        // [nFFT, 2 * bins]: cos then -sin, window applied
    let filters: Tensor      // [bins, bands]

    public init(sampleRate: Int = 8000, nFFT: Int = 256, hop: Int = 80, bands: Int = 40, fMax: Double? = nil) {
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.hop = hop
        self.bands = bands
        let bins = nFFT / 2 + 1
        window = (0..<nFFT).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(nFFT))) }
        var b = [Float](repeating: 0, count: nFFT * 2 * bins)
        for n in 0..<nFFT { for k in 0..<bins {
            let a = 2 * Double.pi * Double(k * n % nFFT) / Double(nFFT)
            b[n * 2 * bins + k] = window[n] * Float(cos(a))
            b[n * 2 * bins + bins + k] = -window[n] * Float(sin(a))
        } }
        basis = Tensor(b, shape: [nFFT, 2 * bins])
        func mel(_ f: Double) -> Double { 2595 * log10(1 + f / 700) }
        func hz(_ m: Double) -> Double { 700 * (pow(10, m / 2595) - 1) }
        let top = mel(fMax ?? Double(sampleRate) / 2)
        let points = (0..<(bands + 2)).map { hz(top * Double($0) / Double(bands + 1)) }
        var f = [Float](repeating: 0, count: bins * bands)
        for k in 0..<bins {
            let freq = Double(k) * Double(sampleRate) / Double(nFFT)
            for m in 0..<bands {
                let (l, c, r) = (points[m], points[m + 1], points[m + 2])
                let w = freq <= l || freq >= r ? 0 : (freq <= c ? (freq - l) / (c - l) : (r - freq) / (r - c))
                f[k * bands + m] = Float(w)
            }
        }
        filters = Tensor(f, shape: [bins, bands])
    }

    /// Number of frames for `n` samples: 1 + (n - nFFT) / hop (0 when shorter than a window).
    public func frames(_ n: Int) -> Int { n < nFFT ? 0 : 1 + (n - nFFT) / hop }

    /// `[bands, frames]` log-mel spectrogram of the samples.
    public func callAsFunction(_ samples: [Float]) -> Tensor {
        let f = frames(samples.count), bins = nFFT / 2 + 1
        guard f > 0 else { return Tensor.full([bands, 0], 0) }
        let framed = Tensor(uninitializedShape: [f, nFFT])
        samples.withUnsafeBufferPointer { s in
            for i in 0..<f { (framed.data + i * nFFT).update(from: s.baseAddress! + i * hop, count: nFFT) }
        }
        return noGrad {
            let spec = framed.matmul(basis)                     // [f, 2 bins]: real, imaginary
            let re = spec.slice(axis: 1, start: 0, end: bins), im = spec.slice(axis: 1, start: bins)
            let power = re * re + im * im                        // [f, bins]
            return (power.matmul(filters) + 1e-6).log().T        // [bands, f]
        }
    }
}
