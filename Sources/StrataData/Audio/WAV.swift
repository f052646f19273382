import Foundation
import StrataCore
import StrataNN

/// Mono audio samples in [-1, 1).
public struct Audio {
    public var samples: [Float]
    public var sampleRate: Int

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }

    /// Reads a RIFF/WAVE file of 16-bit PCM, mono or stereo (channels are averaged). Anything
    /// else, or a truncated file, throws an error naming the file and the byte offset.
    public static func loadWAV(_ path: String) throws -> Audio {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StrataError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")")
        }
        return try decodeWAV([UInt8](data), name: path)
    }

    public static func decodeWAV(_ b: [UInt8], name: String) throws -> Audio {
        func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        guard b.count >= 12, b[0..<4] == [0x52, 0x49, 0x46, 0x46], b[8..<12] == [0x57, 0x41, 0x56, 0x45] else {
            throw StrataError("\(name): not a WAV file (no RIFF/WAVE header at offset 0)")
        }
        var o = 12
        var channels = 0, rate = 0, bits = 0, format = 0
        var sawFormat = false
        while o + 8 <= b.count {
            let id = String(decoding: b[o..<(o + 4)], as: UTF8.self), size = u32(o + 4)
            let body = o + 8
            if id == "fmt " {
                guard size >= 16, body + 16 <= b.count else { throw StrataError("\(name): truncated fmt chunk at offset \(o)") }
                format = u16(body)
                channels = u16(body + 2)
                rate = u32(body + 4)
                bits = u16(body + 14)
                if format == 0xFFFE && size >= 40 && body + 26 <= b.count { format = u16(body + 24) }   // WAVE_FORMAT_EXTENSIBLE: sub-format
                sawFormat = true
            } else if id == "data" {
                guard sawFormat else { throw StrataError("\(name): data chunk at offset \(o) before the fmt chunk") }
                guard format == 1 else { throw StrataError("\(name): not PCM (format tag \(format) at offset 20); only 16-bit PCM WAV is read") }
                guard bits == 16 else { throw StrataError("\(name): \(bits)-bit samples; only 16-bit PCM WAV is read") }
                guard channels == 1 || channels == 2 else { throw StrataError("\(name): \(channels) channels; mono or stereo only") }
                guard rate > 0 else { throw StrataError("\(name): sample rate 0 in the fmt chunk") }
                guard body + size <= b.count else {
                    throw StrataError("\(name): truncated: the data chunk at offset \(o) declares \(size) bytes but only \(b.count - body) follow")
                }
                let frames = size / (2 * channels)
                var out = [Float](repeating: 0, count: frames)
                for f in 0..<frames {
                    var acc: Float = 0
                    for c in 0..<channels { acc += Float(Int16(bitPattern: UInt16(u16(body + 2 * (f * channels + c))))) }
                    out[f] = acc / Float(channels) / 32768
                }
                return Audio(samples: out, sampleRate: rate)
            }
            o = body + size + (size & 1)
        }
        throw StrataError(sawFormat ? "\(name): no data chunk (truncated?)" : "\(name): no fmt chunk")
    }

    /// Writes 16-bit PCM mono (atomically).
    public func saveWAV(_ path: String) throws {
        var b = [UInt8]()
        func put32(_ v: Int) { b += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24 & 0xff)] }
        func put16(_ v: Int) { b += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        b += Array("RIFF".utf8); put32(36 + 2 * samples.count); b += Array("WAVEfmt ".utf8)
        put32(16); put16(1); put16(1); put32(sampleRate); put32(sampleRate * 2); put16(2); put16(16)
        b += Array("data".utf8); put32(2 * samples.count)
        for s in samples { put16(Int(UInt16(bitPattern: Int16(Swift.max(-32768, Swift.min(32767, (s * 32768).rounded())))))) }
        try FileIO.writeAtomically(Data(b), to: path)
    }

    /// Resampled to `rate` with a windowed-sinc (Lanczos, 8 lobes) interpolator, low-passed at the
    /// lower of the two Nyquist frequencies.
    public func resampled(to rate: Int) -> Audio {
        if rate == sampleRate || samples.isEmpty { return self }
        let ratio = Double(rate) / Double(sampleRate)
        let cutoff = Swift.min(1, ratio), a = 8.0
        let n = Int((Double(samples.count) * ratio).rounded())
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let t = Double(i) / ratio
            let lo = Int((t - a / cutoff).rounded(.up)), hi = Int((t + a / cutoff).rounded(.down))
            var acc = 0.0, wsum = 0.0
            for j in Swift.max(lo, 0)...Swift.min(hi, samples.count - 1) where lo <= hi {
                let x = (t - Double(j)) * cutoff
                let w = x == 0 ? 1 : (sin(.pi * x) / (.pi * x)) * (abs(x) < a ? sin(.pi * x / a) / (.pi * x / a) : 0)
                acc += w * Double(samples[j])
                wsum += w
            }
            out[i] = Float(wsum > 0 ? acc / wsum : 0)
        }
        return Audio(samples: out, sampleRate: rate)
    }
}
