import Foundation
import StrataCore
import StrataNN
import StrataData

/// Hand-made image features of the classical workflow. Inputs are grey images `[N, 1, H, W]`
/// (values in [0, 1]); outputs are `[N, features]`.
public enum HandFeatures {
    /// Uniform local binary patterns LBP(P, R) with bilinear sampling of the circle and edge
    /// padding, histogrammed per cell of a `grid` (58 uniform codes + one bin for the rest for
    /// P = 8), each cell's histogram normalised to sum 1 (Ahonen et al.).
    public static func lbp(_ x: Tensor, points p: Int = 8, radius r: Double = 2, grid: (Int, Int) = (7, 7)) -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (table, bins) = uniformTable(p)
        let v = x.scalars
        let cellsY = (0...grid.0).map { Int(Double(h) * Double($0) / Double(grid.0)) }
        let cellsX = (0...grid.1).map { Int(Double(w) * Double($0) / Double(grid.1)) }
        var out = [Float](repeating: 0, count: n * grid.0 * grid.1 * bins)
        let offsets = (0..<p).map { k -> (Double, Double) in
            let a = 2 * Double.pi * Double(k) / Double(p)
            return ((-r * sin(a) * 1e6).rounded() / 1e6, (r * cos(a) * 1e6).rounded() / 1e6)
        }
        for i in 0..<n {
            let img = Array(v[(i * h * w)..<((i + 1) * h * w)])
            func at(_ y: Int, _ xx: Int) -> Double { Double(img[Swift.min(Swift.max(y, 0), h - 1) * w + Swift.min(Swift.max(xx, 0), w - 1)]) }
            var codes = [Int](repeating: 0, count: h * w)
            for y in 0..<h { for xx in 0..<w {
                let c = Double(img[y * w + xx])
                var code = 0
                for (k, (dy, dx)) in offsets.enumerated() {
                    let y0 = Int(floor(dy)), x0 = Int(floor(dx)), fy = dy - floor(dy), fx = dx - floor(dx)
                    let s = (1 - fy) * (1 - fx) * at(y + y0, xx + x0) + (1 - fy) * fx * at(y + y0, xx + x0 + 1)
                        + fy * (1 - fx) * at(y + y0 + 1, xx + x0) + fy * fx * at(y + y0 + 1, xx + x0 + 1)
                    if s >= c - 1e-6 { code |= 1 << k }
                }
                codes[y * w + xx] = table[code]
            } }
            for gy in 0..<grid.0 { for gx in 0..<grid.1 {
                let base = ((i * grid.0 + gy) * grid.1 + gx) * bins
                let cells = (cellsY[gy + 1] - cellsY[gy]) * (cellsX[gx + 1] - cellsX[gx])
                for y in cellsY[gy]..<cellsY[gy + 1] { for xx in cellsX[gx]..<cellsX[gx + 1] { out[base + codes[y * w + xx]] += 1 } }
                for b in 0..<bins { out[base + b] /= Float(Swift.max(cells, 1)) }
            } }
        }
        return Tensor(out, shape: [n, grid.0 * grid.1 * bins])
    }

    /// Codes with at most two 0/1 transitions around the circle keep their own bin; the rest
    /// share the last.
    static func uniformTable(_ p: Int) -> ([Int], Int) {
        var table = [Int](repeating: 0, count: 1 << p)
        var next = 0
        var uniform: [Int] = []
        for c in 0..<(1 << p) {
            var t = 0
            for i in 0..<p where ((c >> i) & 1) != ((c >> ((i + 1) % p)) & 1) { t += 1 }
            if t <= 2 { uniform.append(c) }
        }
        for c in 0..<(1 << p) { table[c] = uniform.count }
        for c in uniform { table[c] = next; next += 1 }
        return (table, uniform.count + 1)
    }

    /// Histograms of oriented gradients (Dalal and Triggs): [-1, 0, 1] gradients, `bins`
    /// unsigned orientations with linear votes, `cell` x `cell` cells (the image centred on whole
    /// cells), 2x2-cell blocks normalised L2-Hys (clip 0.2).
    public static func hog(_ x: Tensor, cell: Int = 8, bins: Int = 9) -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let ch = h / cell, cw = w / cell
        let y0 = (h - ch * cell) / 2, x0 = (w - cw * cell) / 2
        let v = x.scalars
        let blockLen = 4 * bins
        var out = [Float]()
        out.reserveCapacity(n * (ch - 1) * (cw - 1) * blockLen)
        for i in 0..<n {
            let img = Array(v[(i * h * w)..<((i + 1) * h * w)])
            var hist = [Float](repeating: 0, count: ch * cw * bins)
            for y in y0..<(y0 + ch * cell) { for xx in x0..<(x0 + cw * cell) {
                let gx = (xx > 0 && xx < w - 1) ? img[y * w + xx + 1] - img[y * w + xx - 1] : 0
                let gy = (y > 0 && y < h - 1) ? img[(y + 1) * w + xx] - img[(y - 1) * w + xx] : 0
                let mag = (gx * gx + gy * gy).squareRoot()
                var ang = atan2(Double(gy), Double(gx)).truncatingRemainder(dividingBy: .pi)
                if ang < 0 { ang += .pi }
                let pos = ang / (.pi / Double(bins)) - 0.5
                let lo = Int(floor(pos)), frac = Float(pos - floor(pos))
                let cy = (y - y0) / cell, cx = (xx - x0) / cell
                let base = (cy * cw + cx) * bins
                hist[base + ((lo % bins) + bins) % bins] += mag * (1 - frac)
                hist[base + ((lo + 1) % bins + bins) % bins] += mag * frac
            } }
            for by in 0..<(ch - 1) { for bx in 0..<(cw - 1) {
                var block = [Float]()
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let start: Int = ((by + dy) * cw + bx + dx) * bins
                    block += hist[start..<(start + bins)]
                }
                var norm = (block.reduce(0) { $0 + $1 * $1 } + 1e-6).squareRoot()
                block = block.map { Swift.min($0 / norm, 0.2) }
                norm = (block.reduce(0) { $0 + $1 * $1 } + 1e-6).squareRoot()
                out += block.map { $0 / norm }
            } }
        }
        return Tensor(out, shape: [n, (ch - 1) * (cw - 1) * blockLen])
    }
}
