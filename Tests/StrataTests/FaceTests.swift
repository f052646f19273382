import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class FaceTests: XCTestCase {
    /// A folder of synthetic "people": each person a distinct blob position, images with noise.
    func makeFolder(_ name: String, people: Int = 4, perPerson: Int = 6, size: Int = 24) throws -> String {
        let root = testTemp(name)
        try? FileManager.default.removeItem(atPath: root)
        var rng = RandomGenerator(seed: 3)
        for p in 0..<people {
            let dir = root + "/p\(p + 1)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for i in 0..<perPerson {
                var px = [UInt8](repeating: 0, count: size * size)
                let cx = 4 + (p * 5) % (size - 8), cy = 4 + (p * 7) % (size - 8)
                for y in 0..<size { for x in 0..<size {
                    let d = Float((x - cx) * (x - cx) + (y - cy) * (y - cy))
                    px[y * size + x] = UInt8(Swift.min(255, 200 * Foundation.exp(-d / 18) + 30 * rng.nextFloat()))
                } }
                let img = Image(width: size, height: size, channels: 1, pixels: px)
                if i % 2 == 0 { try img.savePNG(dir + "/\(i + 1).png") } else { try img.saveNetpbm(dir + "/\(i + 1).pgm") }
            }
        }
        return root
    }

    func testImageFolderLabelsSplitsAndErrors() throws {
        let root = try makeFolder("folder")
        let d = try ImageFolder.load(root, channels: 1, size: (12, 12))
        XCTAssertEqual(d.classNames, ["p1", "p2", "p3", "p4"])
        XCTAssertEqual(d.count, 24)
        XCTAssertEqual(d.imageShape, [1, 12, 12])
        let (tr, te) = d.splitPerClass(trainPerClass: 4, seed: 1)
        XCTAssertEqual(tr.count, 16)
        XCTAssertEqual(te.count, 8)
        for c in 0..<4 { XCTAssertEqual(tr.labels.filter { $0 == c }.count, 4) }
        XCTAssertEqual(Set(tr.files!).intersection(Set(te.files!)).count, 0, "no image in both")
        XCTAssertEqual(d.splitPerClass(trainPerClass: 4, seed: 1).train.files!, tr.files!, "seeded")
        XCTAssertNotEqual(d.splitPerClass(trainPerClass: 4, seed: 2).train.files!, tr.files!)
        // An empty person folder, a corrupt image, an image far too small: each names the file.
        try FileManager.default.createDirectory(atPath: root + "/p9", withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageFolder.load(root)) { XCTAssert("\($0)".contains("p9") && "\($0)".contains("empty person folder"), "\($0)") }
        FileManager.default.createFile(atPath: root + "/p9/bad.png", contents: Data("oops".utf8))
        XCTAssertThrowsError(try ImageFolder.load(root)) { XCTAssert("\($0)".contains("p9/bad.png"), "\($0)") }
        try FileManager.default.removeItem(atPath: root + "/p9/bad.png")
        try Image(width: 5, height: 5, channels: 1, pixels: [UInt8](repeating: 9, count: 25)).savePNG(root + "/p9/tiny.png")
        XCTAssertThrowsError(try ImageFolder.load(root)) { XCTAssert("\($0)".contains("tiny.png") && "\($0)".contains("far too small"), "\($0)") }
    }

    func testAugmentationIsSeededAndGeometric() {
        let x = Tensor.arange(2 * 1 * 6 * 6).reshape([2, 1, 6, 6]) * (1 / 72)
        var plain = Augmentation()
        var rng = RandomGenerator(seed: 1)
        XCTAssertEqual(plain.apply(x, rng: &rng).scalars, x.scalars, "no transform, no change")
        plain.flip = true
        plain.maxRotation = 10
        var r1 = RandomGenerator(seed: 4), r2 = RandomGenerator(seed: 4)
        XCTAssertEqual(plain.apply(x, rng: &r1).scalars, plain.apply(x, rng: &r2).scalars, "seeded")
        // A pure mirror (forced by a zero-width rotation and a flip that happens) equals flippedHorizontally.
        var m = Augmentation()
        m.flip = true
        var r = RandomGenerator(seed: 0)
        let out = m.apply(x, rng: &r)
        for i in 0..<2 {
            let img = out.slice(axis: 0, start: i, end: i + 1), src = x.slice(axis: 0, start: i, end: i + 1)
            XCTAssert(img.allClose(src) || img.allClose(src.flippedHorizontally()), "image \(i) is the original or its mirror")
        }
        let s = Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2]).standardizedPerImage()
        XCTAssertEqual(Double(s.mean().item), 0, accuracy: 1e-6)
        XCTAssertEqual(Double(s.square().mean().item), 1, accuracy: 1e-4)
    }

    func testHandFeaturesOnKnownImages() {
        // A flat image: every LBP code is "all neighbours >= centre" (255, uniform), so each cell's
        // histogram is all in that one bin.
        let flat = Tensor.full([1, 1, 14, 14], 0.5)
        let h = HandFeatures.lbp(flat, grid: (2, 2)).scalars
        XCTAssertEqual(h.count, 4 * 59)
        let (table, bins) = HandFeatures.uniformTable(8)
        XCTAssertEqual(bins, 59)
        XCTAssertEqual(h[table[255]], 1)
        XCTAssertEqual(h.reduce(0, +), 4, accuracy: 1e-5, "each cell sums to 1")
        // HOG of a vertical step edge: all gradient energy in the 0-degree (horizontal gradient) bins.
        var px = [Float](repeating: 0, count: 24 * 24)
        for y in 0..<24 { for x in 12..<24 { px[y * 24 + x] = 1 } }
        let f = HandFeatures.hog(Tensor(px, shape: [1, 1, 24, 24])).scalars
        XCTAssertEqual(f.count, 2 * 2 * 36)
        var byBin = [Float](repeating: 0, count: 9)
        for (i, v) in f.enumerated() { byBin[i % 9] += v }
        XCTAssertEqual(byBin.indices.max { byBin[$0] < byBin[$1] }, 0)
    }

    func testFisherfacesSeparateClassesAndMetricsBehave() throws {
        // Two classes differing along one axis with noise elsewhere: LDA's single direction must
        // separate them perfectly.
        var rng = RandomGenerator(seed: 7)
        var rows: [Float] = [], labels: [Int] = []
        for i in 0..<40 {
            let c = i % 2
            labels.append(c)
            rows += (0..<10).map { j in (j == 3 ? Float(c) * 4 : 0) + rng.nextNormal() }
        }
        let x = Tensor(rows, shape: [40, 10])
        let s = try Subspace.fisherfaces(x, labels: labels, classes: 2)
        XCTAssertEqual(s.basis.shape, [1, 10])
        let z = s.project(x).scalars
        let m0 = zip(z, labels).filter { $0.1 == 0 }.map { $0.0 }, m1 = zip(z, labels).filter { $0.1 == 1 }.map { $0.0 }
        XCTAssert(m0.max()! < m1.min()! || m1.max()! < m0.min()!, "projected classes overlap")
        // Distances: chi-square of identical histograms is 0; cosine of parallel vectors is 0.
        let a = Tensor([[0.5, 0.5], [1, 0]]), b = Tensor([[0.5, 0.5]])
        XCTAssertEqual(Distance.chiSquare.matrix(a, b)[0][0], 0, accuracy: 1e-6)
        XCTAssertEqual(Distance.cosine.matrix(Tensor([[2, 2]]), b)[0][0], 0, accuracy: 1e-6)
        XCTAssertEqual(Distance.euclidean.matrix(a, b)[1][0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(nearestNeighbour(Tensor([[0.9, 0.1]]), a, labels: [7, 8], distance: .euclidean), [8])
    }

    func testEqualErrorRate() {
        // Perfectly separated distances: EER 0. Same-person pairs 0-1 and 2-3.
        let labels = [0, 0, 1, 1]
        var d = [[Float]](repeating: [Float](repeating: 1, count: 4), count: 4)
        d[0][1] = 0.1; d[2][3] = 0.2
        XCTAssertEqual(FaceEvaluation.equalErrorRate(d, labels), 0, accuracy: 1e-9)
        // One same pair looks like the different ones: FRR 1/2 at FAR 0... the EER sits between.
        d[2][3] = 1
        XCTAssertEqual(FaceEvaluation.equalErrorRate(d, labels), 0.25, accuracy: 0.26)
        XCTAssertGreaterThan(FaceEvaluation.equalErrorRate(d, labels), 0)
    }

    func testTrainEnrollIdentifyAndGalleryChecks() throws {
        let root = try makeFolder("people", people: 5, perPerson: 8)
        var d = try ImageFolder.load(root, channels: 1, size: (24, 24))
        d.normalization = Normalization(scale: 1 / 255, perImage: true)
        for loss in FaceLoss.allCases {
            var o = FaceTrainingOptions()
            o.loss = loss
            o.epochs = 25
            o.batchSize = 16
            o.widths = [4, 8, 8]
            o.embedding = 16
            let net = try FaceTraining.train(d.classes([0, 1, 2, 3]), options: o)
            let e = net.embedding(d.batch(Array(0..<d.count)).inputs)
            XCTAssertEqual(e.shape, [40, 16])
            let norms = (0..<40).map { i in (0..<16).reduce(Float(0)) { $0 + e[i, $1] * e[i, $1] } }
            XCTAssert(norms.allSatisfy { Swift.abs($0 - 1) < 1e-4 }, "\(loss): embeddings are unit length")
            // The training people are told apart: enrol 3, identify the other 5.
            let acc = FaceEvaluation.enrollIdentify(e.slice(axis: 0, start: 0, end: 32), Array(d.labels[0..<32]), enroll: 3, seed: 0, distance: .cosine)
            XCTAssertGreaterThanOrEqual(acc, 0.9, "\(loss)")
        }
        // A saved face model round-trips, and galleries are bound to it.
        var o = FaceTrainingOptions()
        o.epochs = 5
        o.widths = [4, 8, 8]
        let net = try FaceTraining.train(d, options: o)
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: d.classNames, inputShape: d.imageShape, normalization: d.normalization)
        let model = FaceModel(net: net, info: info, threshold: 0.4)
        let path = testTemp("face.safetensors")
        try model.save(to: path)
        let loaded = try FaceModel.load(path)
        XCTAssertEqual(loaded.threshold, 0.4)
        XCTAssertEqual(loaded.fingerprint, model.fingerprint)
        let img = d.image(0)
        XCTAssertEqual(try loaded.embed([img]).scalars, try model.embed([img]).scalars)
        var g = Gallery(model: loaded)
        g.enroll("p1", try loaded.embed([d.image(0), d.image(1)]))
        let gp = testTemp("gallery.json")
        try g.save(gp)
        XCTAssertEqual(try Gallery.load(gp, for: loaded).people.first?.embeddings.count, 2)
        let other = FaceModel(net: try FaceTraining.train(d, options: { var p = o; p.seed = 9; return p }()), info: info, threshold: 0.4)
        XCTAssertThrowsError(try Gallery.load(gp, for: other)) { XCTAssert("\($0)".contains("another model"), "\($0)") }
        XCTAssertThrowsError(try loaded.embed([Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 1, count: 64))], names: ["small.png"])) {
            XCTAssert("\($0)".contains("small.png") && "\($0)".contains("far too small"), "\($0)")
        }
        FileManager.default.createFile(atPath: gp, contents: Data("{broken".utf8))
        XCTAssertThrowsError(try Gallery.load(gp, for: loaded)) { XCTAssert("\($0)".contains(gp), "\($0)") }
        XCTAssertThrowsError(try FaceModel.load(ModelFileTests.fixtures.appendingPathComponent("torch_mlp.safetensors").path)) { _ in }
    }

    /// The AT&T protocol itself, when the shared data is present: the deep workflow beats the
    /// classical one on a split (one seed, to keep the test short).
    func testATTSplit5DeepBeatsRawPixels() throws {
        guard let shared = sharedData else { throw XCTSkip("../shared/data is not present: skipping the AT&T faces check") }
        let dir = shared.appendingPathComponent("att_faces").path
        let full = try ImageFolder.load(dir, channels: 1)
        var small = try ImageFolder.load(dir, channels: 1, size: (46, 56))
        small.normalization = Normalization(scale: 1 / 255, perImage: true)
        XCTAssertEqual(full.count, 400)
        XCTAssertEqual(full.classNames.prefix(3), ["s1", "s2", "s3"])
        let res = try FaceEvaluation.closedSet(full: full, small: small, seeds: [0], deep: [.softmax],
                                               classicalMethods: [FaceEvaluation.classical[0]])
        let raw = res[0].1[0], cnn = res[1].1[0]
        XCTAssertGreaterThan(raw, 0.8)
        XCTAssertGreaterThanOrEqual(cnn, 0.96)
        XCTAssertGreaterThan(cnn, raw)
    }
}
