import Foundation
import StrataCore

/// Where and how training progress is shown.
public enum ProgressStyle {
    /// A live bar when the stream is a terminal, one line per epoch otherwise.
    case auto
    case bar
    case lines
    case none
}

/// A one-line progress bar redrawn in place (`\r`), or plain lines when not on a terminal.
final class ProgressReporter {
    let useBar: Bool
    let enabled: Bool
    let stream: UnsafeMutablePointer<FILE>
    private var lastDraw = 0.0

    init(style: ProgressStyle, toStderr: Bool) {
        stream = toStderr ? stderr : stdout
        enabled = style != .none
        switch style {
        case .bar: useBar = true
        case .auto: useBar = isatty(fileno(toStderr ? stderr : stdout)) != 0
        default: useBar = false
        }
    }

    func write(_ s: String) {
        fputs(s, stream)
        fflush(stream)
    }

    /// Redraws the bar; at most ten times a second unless `force`.
    func update(epoch: Int, epochs: Int, done: Int, total: Int, loss: Double, started: Double, force: Bool = false) {
        guard enabled, useBar else { return }
        let now = ProcessInfo.processInfo.systemUptime
        if !force && now - lastDraw < 0.1 { return }
        lastDraw = now
        let elapsed = max(now - started, 1e-9)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 24
        let filled = total > 0 ? min(width, width * done / total) : width
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" + String(repeating: ".", count: width - filled - 1) : "")
        let line = String(format: "epoch %d/%d [%@] %d/%d  %@ samples/s  loss %.4f  ETA %@",
                          epoch, epochs, bar, done, total, ProgressReporter.compact(rate), loss, ProgressReporter.clock(eta))
        write("\r" + line + "\u{1B}[K")
    }

    /// The end-of-epoch summary (replaces the bar on a terminal).
    func epochLine(_ r: EpochRecord, epochs: Int, validationName v: String) {
        guard enabled else { return }
        var s = String(format: "epoch %d/%d: loss %.4f, accuracy %.4f", r.epoch, epochs, r.trainLoss, r.trainAccuracy)
        if let vl = r.valLoss, let va = r.valAccuracy { s += String(format: ", %@_loss %.4f, %@_accuracy %.4f", v, vl, v, va) }
        s += String(format: " (%.1f s, %@ samples/s)", r.seconds, ProgressReporter.compact(r.samplesPerSecond))
        write((useBar ? "\r\u{1B}[K" : "") + s + "\n")
    }

    func message(_ s: String) {
        guard enabled else { return }
        write(s + "\n")
    }

    static func compact(_ x: Double) -> String {
        x >= 10_000 ? String(format: "%.1fk", x / 1000) : String(format: "%.0f", x)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
