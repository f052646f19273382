import Foundation

/// Wall time per layer forward and per op backward, summed over calls while enabled.
///
/// ```swift
/// Profiler.isEnabled = true
/// for batch in loader.epoch(0) { ... }
/// print(Profiler.report())
/// ```
public enum Profiler {
    nonisolated(unsafe) public static var isEnabled = false
    nonisolated(unsafe) static var totals: [String: (Double, Int)] = [:]

    @inlinable package static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    package static func add(_ key: String, _ seconds: Double) {
        let (t, n) = totals[key] ?? (0, 0)
        totals[key] = (t + seconds, n + 1)
    }

    /// Clears the totals.
    public static func reset() { totals = [:] }

    /// One line per entry, largest total first: total ms, calls, ms per call.
    public static func report() -> String {
        let all = totals.values.reduce(0) { $0 + $1.0 }
        return totals.sorted { $0.value.0 > $1.value.0 }.map { k, v in
            String(format: "%9.1f ms %5.1f%% %7d calls %8.3f ms/call  %@", v.0 * 1000, v.0 / max(all, 1e-12) * 100, v.1, v.0 * 1000 / Double(v.1), k)
        }.joined(separator: "\n")
    }
}
