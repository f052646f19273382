import Foundation

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

/// One line of JSON with sorted keys.
func jsonLine(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

/// Share of all CPU time that other processes used since creation (as the reference's quiet.py).
struct ForeignLoad {
    private let busy0: Double, total0: Double, own0: Double

    init() {
        (busy0, total0) = ForeignLoad.ticks()
        own0 = ForeignLoad.ownTicks()
    }

    func value() -> Double {
        let (b1, t1) = ForeignLoad.ticks()
        let own = ForeignLoad.ownTicks() - own0
        let v = max(0, (b1 - busy0 - own) / max(1, t1 - total0))
        return (v * 1000).rounded() / 1000
    }

    static func ticks() -> (Double, Double) {
        guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = s.split(separator: "\n").first else { return (0, 1) }
        let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let total = f.reduce(0, +)
        return (total - f[3] - f[4], total)
    }

    static func ownTicks() -> Double {
        var r = rusage()
        getrusage(RUSAGE_SELF.rawValue, &r)
        let secs = Double(r.ru_utime.tv_sec) + Double(r.ru_utime.tv_usec) / 1e6 + Double(r.ru_stime.tv_sec) + Double(r.ru_stime.tv_usec) / 1e6
        return secs * Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
