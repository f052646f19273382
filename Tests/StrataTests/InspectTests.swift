import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class InspectTests: XCTestCase {
    func testLinearProbeSeparatesSeparableDataPerfectly() {
        // Three classes on three well separated centres in 5-D, with noise.
        var rng = RandomGenerator(seed: 1)
        let centres: [[Float]] = [[4, 0, 0, 1, 0], [0, 4, 0, 0, 1], [0, 0, 4, 1, 1]]
        func sample(_ n: Int) -> (Tensor, [Int]) {
            var x: [Float] = [], y: [Int] = []
            for _ in 0..<n {
                let c = rng.nextInt(3)
                y.append(c)
                x += centres[c].map { $0 + 0.5 * rng.nextNormal() }
            }
            return (Tensor(x, shape: [n, 5]), y)
        }
        let (trainX, trainY) = sample(300), (testX, testY) = sample(200)
        let probe = LinearProbe.fit(features: trainX, labels: trainY, classes: 3, epochs: 30)
        XCTAssertEqual(probe.accuracy(features: trainX, labels: trainY), 1)
        XCTAssertEqual(probe.accuracy(features: testX, labels: testY), 1)
    }

    func testPCARecoversAKnownDecomposition() {
        // Data = a * u + b * v with orthonormal u, v and std 3 and 1: components are u and v
        // (up to sign), variances 9 and 1 (sample estimates).
        let u: [Float] = [0.6, 0.8, 0, 0], v: [Float] = [0, 0, 0.8, -0.6]
        var rng = RandomGenerator(seed: 2)
        var rows: [Float] = []
        let n = 4000
        for _ in 0..<n {
            let a = 3 * rng.nextNormal(), b = rng.nextNormal()
            rows += (0..<4).map { 5 + a * u[$0] + b * v[$0] }
        }
        let pca = PCA(Tensor(rows, shape: [n, 4]), components: 2)
        let c = pca.components.scalars
        let dot0 = zip(c[0..<4], u).map { $0 * $1 }.reduce(0, +), dot1 = zip(c[4..<8], v).map { $0 * $1 }.reduce(0, +)
        XCTAssertEqual(Swift.abs(dot0), 1, accuracy: 1e-3)
        XCTAssertEqual(Swift.abs(dot1), 1, accuracy: 1e-3)
        XCTAssertEqual(pca.explainedVariance[0], 9, accuracy: 0.5)
        XCTAssertEqual(pca.explainedVariance[1], 1, accuracy: 0.08)
        XCTAssertEqual(pca.explainedVarianceRatio.reduce(0, +), 1, accuracy: 1e-4)
        // Jacobi on a matrix with known eigenvalues.
        let (vals, _) = Linalg.symmetricEigen([2, 1, 0, 1, 2, 0, 0, 0, 5], 3)
        for (a, b) in zip(vals.sorted(), [1.0, 3, 5]) { XCTAssertEqual(a, b, accuracy: 1e-9) }
    }

    func testSaliencyMatchesFiniteDifferences() {
        RandomGenerator.manualSeed(3)
        let m = Sequential(Conv2D(1, 3, kernelSize: 3, padding: 1), Tanh(), Flatten(), Linear(3 * 5 * 5, 4))
        let x = Tensor.randn([2, 1, 5, 5], seed: 4)
        let (grad, cls) = m.saliency(x)
        let h: Float = 1e-2
        for i in [0, 7, 24, 31, 49] {
            var p = x.scalars, q = x.scalars
            p[i] += h; q[i] -= h
            let img = i / 25
            let fp = noGrad { m(Tensor(p, shape: x.shape)) }[img, cls[img]], fq = noGrad { m(Tensor(q, shape: x.shape)) }[img, cls[img]]
            XCTAssertEqual(Double(grad.scalars[i]), Double(fp - fq) / Double(2 * h), accuracy: 2e-3)
        }
        XCTAssertEqual(cls, noGrad { m(x) }.argmaxIndices())
    }

    func testChartTicksCoverTheData() {
        let t = SVGChart.ticks(0.8356, 0.9105)
        XCTAssertEqual(t.count, 6)
        for (a, b) in zip(t, [0.82, 0.84, 0.86, 0.88, 0.9, 0.92]) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        XCTAssertEqual(SVGChart.ticks(1, 3, integer: true), [1, 2, 3])
        let svg = { () -> String in
            var c = SVGChart(title: "t <x>", xLabel: "epoch", yLabel: "loss")
            c.add(SVGChart.Series(name: "train", points: [(1, 0.5), (2, 0.3)]))
            return c.render()
        }()
        XCTAssert(svg.hasPrefix("<svg") && svg.contains("t &lt;x&gt;") && svg.contains("polyline") && svg.contains(">train<"))
    }

    func testReportIsCompleteAndEveryReferencedFileExists() throws {
        // A toy problem: 8x8 images, bright top half (class 0) or bottom half (class 1).
        var rng = RandomGenerator(seed: 5)
        func data(_ n: Int) -> LabeledImages {
            var px: [UInt8] = [], y: [Int] = []
            for _ in 0..<n {
                let c = rng.nextInt(2)
                y.append(c)
                for r in 0..<8 { for _ in 0..<8 { px.append(UInt8((r < 4) == (c == 0) ? 150 + rng.nextInt(100) : rng.nextInt(100))) } }
            }
            return LabeledImages(pixels: px, labels: y, imageShape: [1, 8, 8], classNames: ["top", "bottom"])
        }
        let train = data(300), test = data(120)
        RandomGenerator.manualSeed(6)
        let m = Sequential(Conv2D(1, 4, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2), Flatten(), Linear(64, 8), ReLU(), Linear(8, 2))
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: m), classNames: ["top", "bottom"], inputShape: [1, 8, 8])
        let t = Trainer(model: m, optimizer: Adam(m.parameters(), lr: 0.01), info: info)
        var o = FitOptions(epochs: 3, batchSize: 32)
        o.progress = .none
        try t.fit(train, validation: test, options: o)
        let dir = testTemp("report")
        var opts = InspectOptions()
        opts.probeTrain = 200
        opts.probeTest = 100
        let saved = SavedModel(model: m, info: t.info)
        let r = try Inspector.report(saved, train: train, test: test, images: [], outDir: dir, options: opts)
        XCTAssertEqual(r.probes.map { $0.layer }, ["pixels", "0", "1", "2", "4", "5", "6"])
        XCTAssertGreaterThanOrEqual(r.probes.last!.accuracy, 0.95)
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        for section in ["Model", "First-layer filters", "Feature maps", "Linear probes", "What units look for", "Class saliency", "Embedding space", "Training curves"] {
            XCTAssert(html.contains("<h2>\(section)</h2>"), "missing section \(section)")
        }
        XCTAssertFalse(html.contains("<script"), "no scripts")
        let srcs = html.components(separatedBy: "src=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        XCTAssertGreaterThan(srcs.count, 10)
        for s in srcs {
            XCTAssertFalse(s.contains("://"), "\(s) is not a local file")
            XCTAssert(FileManager.default.fileExists(atPath: dir + "/" + s), "\(s) is referenced but missing")
        }
        for f in r.files { XCTAssert(FileManager.default.fileExists(atPath: f), f) }
        // PNG files really are PNGs libpng can read back.
        XCTAssertNoThrow(try Image.load(dir + "/filters.png"))
        try renderWithChromium(dir)
    }

    /// Headless Chromium renders the report to a screenshot (skipped where Chromium is absent;
    /// `make report-check` installs it).
    func renderWithChromium(_ dir: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            print("skipping the Chromium render: /usr/bin/chromium is not installed (make report-check installs it)")
            return
        }
        let shot = dir + "-screenshot.png"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,3000", "--screenshot=\(shot)", "file://\(dir)/index.html"]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let img = try Image.load(shot)
        XCTAssertEqual(img.width, 1000)
        XCTAssertEqual(img.height, 3000)
        XCTAssertGreaterThan(Set(img.pixels).count, 50, "the screenshot is not blank")
    }

    func testBadLayerAndFolderErrors() throws {
        let m = Sequential(Flatten(), Linear(4, 2))
        XCTAssertThrowsError(try m.layerOutputs(Tensor.zeros([1, 4]), layers: ["7"])) { e in
            XCTAssert("\(e)".contains("layer '7' does not exist") && "\(e)".contains("0, 1"), "\(e)")
        }
        XCTAssertThrowsError(try Inspector.prepareFolder("/proc/strata-cannot-write")) { XCTAssert("\($0)".contains("/proc/strata-cannot-write"), "\($0)") }
    }
}
