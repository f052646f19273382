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

    /// The sample rates read, in Hz: below, a recording resampled to a model's rate would grow
    /// without bound (1 Hz to 8 kHz is 8000 times the samples); above, no recorder goes.
    public static let sampleRates = 1000...768_000

    /// Reads a RIFF/WAVE file of 16-bit PCM, mono or stereo (channels are averaged). Anything
    /// else, or a truncated file, throws an error naming the file and the byte offset. Only the
    /// chunk headers are read until the data chunk has been checked against the file's real
    /// length, `sampleRates` and `InputLimits.current.maxAudioSeconds`; then its samples are.
    public static func loadWAV(_ path: String) throws -> Audio {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw StrataError("\(path): no such file") }
        if isFolder.boolValue { throw StrataError("\(path): is a folder, not a WAV file") }
        guard let fh = FileHandle(forReadingAtPath: path) else { throw StrataError("\(path): cannot be read (permission denied)") }
        defer { try? fh.close() }
        do {
            let length = Int(try fh.seekToEnd())
            return try decodeWAV(length: length, name: path) { offset, count in
                try fh.seek(toOffset: UInt64(offset))
                return [UInt8](try fh.read(upToCount: count) ?? Data())
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError("\(path): cannot be read (\(error.localizedDescription))")
        }
    }

    /// `loadWAV` of bytes already in memory; `name` names them in errors.
    public static func decodeWAV(_ b: [UInt8], name: String) throws -> Audio {
        try decodeWAV(length: b.count, name: name) { offset, count in Array(b[offset..<Swift.min(b.count, offset + count)]) }
    }

    /// The parser: `read(offset, count)` gives up to `count` bytes at `offset` of a file of
    /// `length` bytes. Every offset and size is checked against `length` before it is used.
    private static func decodeWAV(length: Int, name: String, read: (Int, Int) throws -> [UInt8]) throws -> Audio {
        func u32(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        let riff = length >= 12 ? try read(0, 12) : []
        guard riff.count == 12, riff[0..<4] == [0x52, 0x49, 0x46, 0x46], riff[8..<12] == [0x57, 0x41, 0x56, 0x45] else {
            throw StrataError("\(name): not a WAV file (no RIFF/WAVE header at offset 0)")
        }
        var o = 12
        var channels = 0, rate = 0, bits = 0, format = 0
        var sawFormat = false
        // Chunk sizes are 32-bit and offsets stay within `length` (an Int), so no sum overflows.
        while o + 8 <= length {
            let h = try read(o, 8)
            guard h.count == 8 else { break }
            let id = String(decoding: h[0..<4], as: UTF8.self), size = u32(h, 4)
            let body = o + 8
            if id == "fmt " {
                guard size >= 16, body + 16 <= length else { throw StrataError("\(name): truncated fmt chunk at offset \(o)") }
                let f = try read(body, Swift.min(size, 40))
                guard f.count >= 16 else { throw StrataError("\(name): truncated fmt chunk at offset \(o)") }
                format = u16(f, 0)
                channels = u16(f, 2)
                rate = u32(f, 4)
                bits = u16(f, 14)
                if format == 0xFFFE && size >= 40 && f.count >= 26 { format = u16(f, 24) }   // WAVE_FORMAT_EXTENSIBLE: sub-format
                sawFormat = true
            } else if id == "data" {
                guard sawFormat else { throw StrataError("\(name): data chunk at offset \(o) before the fmt chunk") }
                guard format == 1 else { throw StrataError("\(name): not PCM (format tag \(format) at offset 20); only 16-bit PCM WAV is read") }
                guard bits == 16 else { throw StrataError("\(name): \(bits)-bit samples; only 16-bit PCM WAV is read") }
                guard channels == 1 || channels == 2 else { throw StrataError("\(name): \(channels) channels; mono or stereo only") }
                guard sampleRates.contains(rate) else {
                    throw StrataError("\(name): sample rate \(rate) Hz in the fmt chunk; only \(sampleRates.lowerBound) to \(sampleRates.upperBound) Hz is read")
                }
                guard size <= length - body else {
                    throw StrataError("\(name): truncated: the data chunk at offset \(o) declares \(size) bytes but only \(length - body) follow")
                }
                let frames = size / (2 * channels)
                let maxSeconds = InputLimits.current.maxAudioSeconds
                // frames < 2^31 and rate >= 1000: the product cannot overflow.
                guard frames <= maxSeconds * rate else {
                    throw StrataError("\(name): \(frames) samples at \(rate) Hz is \(frames / rate) s, over the limit of \(maxSeconds) s (set STRATA_MAX_AUDIO_SECONDS to change it)")
                }
                let data = try read(body, frames * 2 * channels)
                guard data.count == frames * 2 * channels else {
                    throw StrataError("\(name): truncated: the data chunk at offset \(o) declares \(size) bytes but only \(data.count) could be read")
                }
                var out = [Float](repeating: 0, count: frames)
                for f in 0..<frames {
                    var acc: Float = 0
                    for c in 0..<channels { acc += Float(Int16(bitPattern: UInt16(u16(data, 2 * (f * channels + c))))) }
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
