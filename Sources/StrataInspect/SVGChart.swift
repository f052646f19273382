import Foundation
import StrataCore
import StrataNN
import StrataData

/// A small SVG chart writer: line and scatter series on numeric axes with ticks, labels, a
/// title and a legend. No scripts, no external resources.
///
/// ```swift
/// var c = SVGChart(title: "Loss", xLabel: "epoch", yLabel: "loss")
/// c.add(SVGChart.Series(name: "train", points: [(1, 0.5), (2, 0.3)], style: .line))
/// try c.render().write(toFile: "loss.svg", atomically: true, encoding: .utf8)
/// ```
public struct SVGChart {
    public enum Style { case line, scatter }

    public struct Series {
        public var name: String
        public var points: [(Double, Double)]
        public var style: Style
        public var color: String?
        public init(name: String, points: [(Double, Double)], style: Style = .line, color: String? = nil) {
            self.name = name
            self.points = points
            self.style = style
            self.color = color
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var width = 640, height = 400
    public var series: [Series] = []
    /// Fixed axis ranges (default: the data's, widened to round ticks).
    public var xRange: (Double, Double)?, yRange: (Double, Double)?
    /// Labels for integer x positions (e.g. layer names) instead of numbers.
    public var xTickLabels: [Int: String]?

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    public mutating func add(_ s: Series) { series.append(s) }

    /// About `count` round tick values (1, 2 or 5 times a power of ten apart), from at or below
    /// `lo` to at or above `hi`; whole numbers only when `integer`.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5, integer: Bool = false) -> [Double] {
        let span = hi > lo ? hi - lo : Swift.max(Swift.abs(hi), 1)
        var raw = span / Double(count)
        if integer { raw = Swift.max(raw, 1) }
        let mag = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * mag
        let start = Foundation.floor(lo / step + 1e-9) * step
        var t: [Double] = [start]
        while t.last! < hi - step * 1e-9 { t.append(start + Double(t.count) * step) }
        if t.count < 2 { t.append(start + step) }
        return t
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && Swift.abs(v) < 1e6 { return String(Int(v)) }
        return String(format: Swift.abs(v) < 0.01 ? "%.1e" : "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public func render() -> String {
        let all = series.flatMap { $0.points }
        let xs = all.map { $0.0 }, ys = all.map { $0.1 }
        let integerX = !xs.isEmpty && xs.allSatisfy { $0 == $0.rounded() }
        var xt = SVGChart.ticks(xRange?.0 ?? (xs.min() ?? 0), xRange?.1 ?? (xs.max() ?? 1), integer: integerX)
        if let labels = xTickLabels { xt = labels.keys.sorted().map(Double.init) }
        let yt = SVGChart.ticks(yRange?.0 ?? (ys.min() ?? 0), yRange?.1 ?? (ys.max() ?? 1))
        let x0 = xRange?.0 ?? xt.first!, x1 = xRange?.1 ?? xt.last!
        let y0 = yRange?.0 ?? yt.first!, y1 = yRange?.1 ?? yt.last!
        let left = 70.0, right = 150.0, top = 40.0, bottom = 60.0
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        func sx(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * pw }
        func sy(_ y: Double) -> Double { top + ph - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * ph }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left + pw / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(SVGChart.escape(title))</text>\n"
        for t in yt where t >= y0 - 1e-12 && t <= y1 + 1e-12 {
            let y = sy(t)
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#e0e0e0\"/>\n"
            s += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(SVGChart.label(t))</text>\n"
        }
        for t in xt where t >= x0 - 1e-12 && t <= x1 + 1e-12 {
            let x = sx(t)
            s += "<line x1=\"\(x)\" y1=\"\(top + ph)\" x2=\"\(x)\" y2=\"\(top + ph + 5)\" stroke=\"black\"/>\n"
            let text = xTickLabels?[Int(t)] ?? SVGChart.label(t)
            s += "<text x=\"\(x)\" y=\"\(top + ph + 18)\" text-anchor=\"middle\">\(SVGChart.escape(text))</text>\n"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(left + pw / 2)\" y=\"\(Double(height) - 14)\" text-anchor=\"middle\">\(SVGChart.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(18 \(top + ph / 2)) rotate(-90)\" text-anchor=\"middle\">\(SVGChart.escape(yLabel))</text>\n"
        for (k, ser) in series.enumerated() {
            let color = ser.color ?? ColorMap.categorical[k % ColorMap.categorical.count]
            switch ser.style {
            case .line:
                let pts = ser.points.map { String(format: "%.1f,%.1f", sx($0.0), sy($0.1)) }.joined(separator: " ")
                s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                for p in ser.points { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", sx(p.0), sy(p.1), color) }
            case .scatter:
                for p in ser.points { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%@\" fill-opacity=\"0.7\"/>\n", sx(p.0), sy(p.1), color) }
            }
            let ly = top + 10 + Double(k) * 18
            s += "<rect x=\"\(left + pw + 12)\" y=\"\(ly - 9)\" width=\"12\" height=\"12\" fill=\"\(color)\"/>\n"
            s += "<text x=\"\(left + pw + 30)\" y=\"\(ly + 1)\">\(SVGChart.escape(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
