import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Faces in the wild: the face box, LFW pair files and their scores, the residual face network,
/// training through the Trainer, and JPEG conversions.
final class WildFaceTests: XCTestCase {
    func testFaceCropCutsTheBoxAndKeepsContext() {
        // 200x100 image whose pixel value is its column / 2 (rows alike).
        let img = Image(width: 200, height: 100, channels: 1, pixels: (0..<(200 * 100)).map { UInt8(($0 % 200) / 2) })
        let crop = FaceCrop(centerX: 0.5, centerY: 0.5, side: 0.4, size: 40, context: 1.25)
        XCTAssertEqual(crop.contextSize, 50)
        // The box: 40 px (0.4 of the shorter side) around (100, 50), so columns 80..<120 at scale 1.
        let face = crop.apply(img)
        XCTAssertEqual([face.width, face.height], [40, 40])
        XCTAssertEqual(face.pixels[0], 40, "left edge is column 80")
        XCTAssertEqual(face.pixels[39], 59, "right edge is column 119")
        let context = crop.contextImage(img)
        XCTAssertEqual([context.width, context.height], [50, 50])
        XCTAssertEqual(context.pixels[0], 37, "context starts 5 columns further left (column 75)")
        // Outside the photo, edge pixels repeat.
        let edge = img.cropped(x: -3, y: 98, width: 5, height: 4)
        XCTAssertEqual(edge.pixels[0], 0)
        XCTAssertEqual(edge.pixels[4], 0, "column 1 of the photo")
        XCTAssertEqual(Array(edge.pixels[15..<20]), Array(edge.pixels[0..<5]), "rows below the photo repeat its last row")
        XCTAssertEqual(FaceCrop.parse("0.5,0.52,0.48", size: 64), FaceCrop(centerX: 0.5, centerY: 0.52, side: 0.48, size: 64))
        XCTAssertNil(FaceCrop.parse("0.5,0.52", size: 64))
        XCTAssertNil(FaceCrop.parse("0.5,x,0.4", size: 64))
    }

    func testAugmentationWindowMatchesCentreCropWhenIdle() {
        let x = Tensor.randn([2, 3, 10, 10], seed: 3)
        var rng = RandomGenerator(seed: 1)
        XCTAssert(Augmentation().apply(x, rng: &rng, outputSize: (6, 6)).allClose(x.centerCrop(width: 6, height: 6)))
        // A zoom of exactly 1 with the geometric path on (flip never drawn with prob. 0): also the window.
        var a = Augmentation()
        a.maxRotation = 1e-9
        XCTAssert(a.apply(x, rng: &rng, outputSize: (6, 6)).allClose(x.centerCrop(width: 6, height: 6), atol: 1e-4))
        // Saturation moves colours towards or away from grey but keeps each pixel's grey value.
        var sat = Augmentation()
        sat.saturation = 0.8
        let y = sat.apply(x, rng: &rng)
        func luma(_ t: Tensor) -> Tensor {
            t.slice(axis: 1, start: 0, end: 1) * 0.299 + t.slice(axis: 1, start: 1, end: 2) * 0.587 + t.slice(axis: 1, start: 2, end: 3) * 0.114
        }
        XCTAssert(luma(y).allClose(luma(x), atol: 1e-4))
        XCTAssertFalse(y.allClose(x, atol: 1e-3))
    }

    /// Rotated, zoomed, shifted and mirrored warps against PyTorch's definition written out pixel by
    /// pixel (affine_grid + grid_sample, bilinear, border padding, align_corners false), on images
    /// wider than one 64-pixel run of the kernel and with a window smaller than the input.
    func testWarpMatchesGridSampleDefinition() {
        for (h, w, oh, ow) in [(10, 10, 6, 6), (37, 90, 31, 70), (64, 64, 64, 64)] {
            let x = Tensor.randn([1, 3, h, w], seed: h), xs = x.scalars
            for warp in [Warp(rotation: 0.3, scale: 1.1, shiftX: 0.1, shiftY: -0.05, flip: true),
                         Warp(rotation: -0.7, scale: 0.8, shiftX: -0.3, shiftY: 0.2), Warp(rotation: 2.5, scale: 1.3)] {
                let got = warp.apply(x, outputSize: (oh, ow)).scalars
                let (c, s) = (Foundation.cos(Double(warp.rotation)), Foundation.sin(Double(warp.rotation)))
                let f = warp.flip ? -1.0 : 1.0, k = Double(warp.scale)
                let (cx, cy) = (Double(ow) / Double(w), Double(oh) / Double(h))
                var worst = 0.0
                for ch in 0..<3 { for y in 0..<oh { for xx in 0..<ow {
                    let xn = (2 * Double(xx) + 1) / Double(ow) - 1, yn = (2 * Double(y) + 1) / Double(oh) - 1
                    let u = (c / k * f * xn - s / k * yn + Double(warp.shiftX)) * cx
                    let v = (s / k * f * xn + c / k * yn + Double(warp.shiftY)) * cy
                    let sx = Swift.min(Swift.max(((u + 1) * Double(w) - 1) / 2, 0), Double(w - 1))
                    let sy = Swift.min(Swift.max(((v + 1) * Double(h) - 1) / 2, 0), Double(h - 1))
                    let (x0, y0) = (Int(sx), Int(sy)), (x1, y1) = (Swift.min(Int(sx) + 1, w - 1), Swift.min(Int(sy) + 1, h - 1))
                    let (fx, fy) = (sx - Double(x0), sy - Double(y0))
                    func px(_ yy: Int, _ xq: Int) -> Double { Double(xs[(ch * h + yy) * w + xq]) }
                    let expected = px(y0, x0) * (1 - fx) * (1 - fy) + px(y0, x1) * fx * (1 - fy) + px(y1, x0) * (1 - fx) * fy + px(y1, x1) * fx * fy
                    worst = Swift.max(worst, abs(Double(got[(ch * oh + y) * ow + xx]) - expected))
                } } }
                XCTAssertLessThan(worst, 1e-4, "\(warp) on \(w)x\(h) -> \(ow)x\(oh)")
            }
        }
    }

    func testFixedWarpsAndTestTimeViews() throws {
        let x = Tensor.arange(2 * 100).reshape([1, 2, 10, 10])
        // Identity: the centred window; a shift of 2/6 of the half-window moves it one pixel right.
        XCTAssert(Warp().apply(x, outputSize: (6, 6)).allClose(x.centerCrop(width: 6, height: 6), atol: 1e-4))
        let right = x.slice(axis: 2, start: 2, end: 8).slice(axis: 3, start: 3, end: 9)
        XCTAssert(Warp(shiftX: 2.0 / 6).apply(x, outputSize: (6, 6)).allClose(right, atol: 1e-4))
        XCTAssert(Warp(flip: true).apply(x, outputSize: (6, 6)).allClose(x.centerCrop(width: 6, height: 6).flippedHorizontally(), atol: 1e-4))
        // Zooming in by 2 halves the step between neighbouring source pixels (0.5 px along a row).
        let zoomed = Warp(scale: 2).apply(x, outputSize: (6, 6)).scalars
        XCTAssertEqual(zoomed[1] - zoomed[0], 0.5, accuracy: 1e-4)
        XCTAssertEqual(Warp.views(1), [Warp()])
        XCTAssertEqual(Warp.views(5).count, 5)
        XCTAssertEqual(Warp.views(99).count, 11)

        // A model with a face box: 1 view is the plain path; 5 views sum five shifted embeddings.
        RandomGenerator.manualSeed(0)
        let net = FaceNet(classes: 3, loss: .cosface, embedding: 8, widths: [4, 8, 8], inputSize: (16, 16), channels: 1)
        net.eval()
        var model = FaceModel(net: net, info: ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: ["a", "b", "c"],
                                                        inputShape: [1, 16, 16], normalization: Normalization(scale: 1 / 255, perImage: true)),
                              threshold: 0.5)
        let box = FaceCrop(centerX: 0.5, centerY: 0.5, side: 0.5, size: 16)
        model.crop = box
        let texture: [UInt8] = (0..<1600).map { (i: Int) -> UInt8 in UInt8((i * 13 + (i / 40) * 5) % 256) }
        let photo = Image(width: 40, height: 40, channels: 1, pixels: texture)
        let plain = try model.embed([photo])
        XCTAssert(try model.embed([photo], views: 1).allClose(plain, atol: 1e-6))
        let context = Tensor.stack([box.contextImage(photo).tensor()])
        let sum = Warp.views(5).map { w -> Tensor in
            let v = w.apply(context, outputSize: (16, 16)).standardizedPerImage()
            return noGrad { net.embed(v) + net.embed(v.flippedHorizontally()) }
        }.reduce(Tensor.zeros([1, 8]), +)
        model.views = 5
        XCTAssert(try model.embed([photo]).allClose(l2Normalized(sum), atol: 1e-5))
        XCTAssertFalse(try model.embed([photo]).allClose(plain, atol: 1e-4))
        // The setting travels in the model file.
        let path = testTemp("views-face.safetensors")
        try model.save(to: path)
        XCTAssertEqual(try FaceModel.load(path).views, 5)
    }

    func testFramesMapOtherPhotosOntoTheTrainingFrame() {
        // A 20x40 photo; the frame centred at (0.5, 0.25) with twice the shorter side is a 40x40
        // square from (-10, -10): edges repeat outside the photo.
        let values: [UInt8] = (0..<800).map { (i: Int) -> UInt8 in UInt8(i % 251) }
        let photo = Image(width: 20, height: 40, channels: 1, pixels: values)
        let frame = FaceCrop.parse("0.5,0.25,2", size: 250, maxSide: 3)!
        let f = frame.reframe(photo)
        XCTAssertEqual([f.width, f.height], [40, 40])
        XCTAssertEqual(f.pixels[10 * 40 + 10], photo.pixels[0])
        XCTAssertEqual(f.pixels[0], photo.pixels[0])
        XCTAssertEqual(f.pixels[(10 + 5) * 40 + 10 + 7], photo.pixels[5 * 20 + 7])
        XCTAssertNil(FaceCrop.parse("0.5,0.25,2", size: 64))   // face boxes stay within 1.5
    }

    func testRandomGreyAndErasing() {
        let x = Tensor.randn([4, 3, 12, 12], seed: 5)
        var rng = RandomGenerator(seed: 2)
        var grey = Augmentation()
        grey.greyProbability = 1
        let g = grey.apply(x, rng: &rng)
        XCTAssert(g.slice(axis: 1, start: 0, end: 1).allClose(g.slice(axis: 1, start: 2, end: 3)), "grey: R == B")
        XCTAssert(g.slice(axis: 1, start: 1, end: 2).allClose(x.slice(axis: 1, start: 0, end: 1) * 0.299 + x.slice(axis: 1, start: 1, end: 2) * 0.587 + x.slice(axis: 1, start: 2, end: 3) * 0.114, atol: 1e-5))
        // Erasing: on a constant 0.5 image with one 0 and one 1 pixel, the changed pixels form one
        // rectangle (the same in every channel) of 2-20 % of the image, with values in [0, 1].
        var px = [Float](repeating: 0.5, count: 3 * 20 * 20)
        px[0] = 0; px[399] = 1
        let c = Tensor(px, shape: [1, 3, 20, 20])
        var er = Augmentation()
        er.eraseProbability = 1
        for seed in 0..<5 {
            var r = RandomGenerator(seed: UInt64(seed))
            let e = er.apply(c, rng: &r).scalars
            var ys = Set<Int>(), xs = Set<Int>(), changed = 0
            for ch in 0..<3 {
                for p in 0..<400 where e[ch * 400 + p] != px[ch * 400 + p] {
                    changed += 1; ys.insert(p / 20); xs.insert(p % 20)
                    XCTAssert((0...1).contains(e[ch * 400 + p]))
                }
            }
            XCTAssertGreaterThan(changed, 0)
            XCTAssertLessThanOrEqual(changed, 3 * ys.count * xs.count)
            XCTAssert((8...80).contains(ys.count * xs.count), "area \(ys.count * xs.count) of 400")
        }
    }

    func testPairsFilesParseAndReportLines() throws {
        let view1 = "2\nA\t1\t2\nB\t1\t3\nA\t1\tB\t2\nC\t4\tA\t1\n"
        let p = try FacePairs.parse(view1, file: "v1.txt")
        XCTAssertEqual(p.pairs.count, 4)
        XCTAssertEqual(p.pairs.map(\.same), [true, true, false, false])
        XCTAssertEqual(p.pairs[3], FacePairs.Pair("C", 4, "A", 1, line: 5))
        XCTAssertEqual(p.folds.flatMap { $0 }.sorted(), [0, 1, 2, 3], "every pair in exactly one fold")
        let view2 = "2\t1\nA\t1\t2\nA\t1\tB\t1\nB\t1\t2\nC\t1\tD\t1\n"
        let q = try FacePairs.parse(view2, file: "v2.txt")
        XCTAssertEqual(q.folds, [[0, 1], [2, 3]])
        XCTAssertEqual(FacePairs.imagePath(root: "/r", name: "A", index: 7), "/r/A/A_0007.jpg")
        func fails(_ text: String, _ words: [String]) {
            XCTAssertThrowsError(try FacePairs.parse(text, file: "p.txt")) { e in
                for w in words { XCTAssert("\(e)".contains(w), "'\(w)' missing from: \(e)") }
            }
        }
        fails("2\nA\t1\t2\nB\tone\t3\nA\t1\tB\t2\nC\t4\tA\t1\n", ["p.txt:3", "malformed pair line", "B\tone\t3"])
        fails("2\nA\t1\t2\nB\t1\t3\nA\t1\t2\nC\t4\tA\t1\n", ["p.txt:4", "different-person line"])
        fails("2\nA\t1\t2\nB\t1\t3\nA\t1\tB\t2\n", ["ends after 3 pairs", "promises 4"])
        fails("1\nA\t1\t2\nA\t1\tB\t2\nextra\n", ["p.txt:4", "more lines"])
        fails("two\n", ["p.txt:1", "first line"])
        fails("1\nA\t0\t2\nA\t1\tB\t2\n", ["p.txt:2"])
        // Writing and reading back.
        XCTAssertEqual(try FacePairs.parse(p.view1Text(), file: "again").pairs.map { [$0.name1, $0.name2] }, p.pairs.map { [$0.name1, $0.name2] })
    }

    func testPairScoresAgainstHandCounts() {
        // Same pairs score 0.9, 0.8, 0.4; different 0.5, 0.3, 0.1.
        let s: [Float] = [0.9, 0.8, 0.4, 0.5, 0.3, 0.1]
        let same = [true, true, true, false, false, false]
        let score = FacePairs.score(similarities: s, same: same, folds: [[0, 3], [1, 4], [2, 5]])
        // AUC: of 9 (same, different) comparisons, 0.4 loses to 0.5 only: 8/9.
        XCTAssertEqual(score.auc, 8.0 / 9, accuracy: 1e-12)
        // FAR 1 % of 3 different pairs allows none: accept above 0.5, so 2 of 3 same pairs.
        XCTAssertEqual(score.tarAtFar1, 2.0 / 3, accuracy: 1e-12)
        // Best single threshold over all: between 0.5 and 0.8 (5 of 6 right) or 0.3/0.4 (5 of 6).
        let t = score.threshold
        XCTAssertEqual(s.indices.filter { (s[$0] > t) == same[$0] }.count, 5)
        // Perfectly separated scores: every fold right.
        let sep = FacePairs.score(similarities: [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], same: same, folds: [[0, 3], [1, 4], [2, 5]])
        XCTAssertEqual(sep.accuracy, 1)
        XCTAssertEqual(sep.auc, 1)
        XCTAssertEqual(sep.tarAtFar1, 1)
        // Fold 0 holds (0.9, 0.5): thresholds from folds 1+2 (0.8, 0.4 same; 0.3, 0.1 different) fall in (0.3, 0.4),
        // so 0.5 is accepted: fold 0 gets 1 of 2 right.
        XCTAssertEqual(FacePairs.bestThreshold([0.8, 0.4, 0.3, 0.1], [true, true, false, false]), 0.35, accuracy: 1e-6)
    }

    func testMadePairsAreSeededDistinctAndHeldOutIsAShare() throws {
        let people = [("A", 3), ("B", 2), ("C", 1), ("D", 5)].map { (name: $0.0, photos: $0.1) }
        let p = try FacePairs.make(people: people, same: 8, different: 8, seed: 4)
        XCTAssertEqual(p.pairs.filter(\.same).count, 8)
        XCTAssertEqual(Set(p.pairs.map { "\($0.name1)\($0.index1)\($0.name2)\($0.index2)" }).count, 16, "no pair twice")
        for q in p.pairs {
            XCTAssert(q.same ? q.index1 < q.index2 : q.name1 < q.name2)
            XCTAssert(q.index1 <= people.first { $0.name == q.name1 }!.photos && q.index2 <= people.first { $0.name == q.name2 }!.photos)
        }
        XCTAssertEqual(try FacePairs.make(people: people, same: 8, different: 8, seed: 4).pairs, p.pairs)
        XCTAssertThrowsError(try FacePairs.make(people: people, same: 15, different: 1, seed: 0)) { XCTAssert("\($0)".contains("only 14")) }
        let names = (0..<1097).map { "p\($0)" }
        let held = FacePairs.heldOutPeople(names.shuffled(), fraction: 0.1, seed: 0)
        XCTAssertEqual(held.count, 109, "10 % of 1,097 rounded down, as in the reference split")
        XCTAssertEqual(held, FacePairs.heldOutPeople(names, fraction: 0.1, seed: 0), "independent of listing order")
        XCTAssertNotEqual(held, FacePairs.heldOutPeople(names, fraction: 0.1, seed: 1))
    }

    func testResidualFaceNetShapesLossesAndFile() throws {
        RandomGenerator.manualSeed(0)
        let net = FaceNet(classes: 5, loss: .cosface, embedding: 16, widths: [8, 16], inputSize: (16, 16), scale: 10, margin: 0.3,
                          channels: 3, blocks: [1, 2])
        net.eval()
        let x = Tensor.randn([4, 3, 16, 16], seed: 1)
        XCTAssertEqual(net(x).shape, [4, 5])
        let e = net.embedding(x)
        XCTAssertEqual(e.shape, [4, 16])
        XCTAssertEqual(Double(e.square().sum(axes: [1]).scalars.max()!), 1, accuracy: 1e-4)
        // The Trainer's margin loss equals the direct one for CosFace and ArcFace.
        let labels = [0, 3, 4, 1]
        XCTAssertEqual(net.marginLoss(scores: net(x), labels: labels).item, net.trainingLoss(x, labels).item, accuracy: 1e-4)
        let arc = FaceNet(classes: 5, loss: .arcface, embedding: 16, widths: [8, 16], inputSize: (16, 16), channels: 3, blocks: [1, 1])
        arc.eval()
        XCTAssertEqual(arc.marginLoss(scores: arc(x), labels: labels).item, arc.trainingLoss(x, labels).item, accuracy: 1e-4)
        // Saved and loaded through the registry, with its crop.
        var model = FaceModel(net: net, info: ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: (0..<5).map(String.init),
                                                        inputShape: [3, 16, 16], normalization: Normalization(scale: 1 / 255, perImage: true)),
                              threshold: 0.4)
        model.crop = FaceCrop(centerX: 0.5, centerY: 0.5, side: 0.5, size: 16)
        let path = testTemp("resface.safetensors")
        try model.save(to: path)
        let back = try FaceModel.load(path)
        XCTAssertEqual(back.crop, model.crop)
        XCTAssertEqual((back.net as? FaceNet)?.blocks, [1, 2])
        XCTAssert(back.net(x).allClose(net(x), atol: 1e-5))
        // embed() cuts the box: a 32x32 photo whose centre 16x16 is the input gives the input's embedding.
        let photo = Image(width: 32, height: 32, channels: 3, pixels: (0..<(32 * 32 * 3)).map { UInt8(($0 * 7) % 256) })
        let centre = model.crop!.apply(photo)
        let direct = back.net.embedding(try Preprocessing(back.info).tensor(images: [centre]))
        XCTAssert(try back.embed([photo]).allClose(direct, atol: 1e-5))

        // An ensemble of this network and a grey one on a wider crop: the embedding is both unit
        // embeddings side by side over sqrt(2), and survives a file round trip with each crop.
        let grey = FaceNet(classes: 5, loss: .cosface, embedding: 8, widths: [8], inputSize: (16, 16), channels: 1, blocks: [1])
        grey.eval()
        var second = FaceModel(net: grey, info: ModelInfo(architecture: ModuleRegistry.spec(of: grey), classNames: (0..<5).map(String.init),
                                                          inputShape: [1, 16, 16], normalization: Normalization(scale: 1 / 255, perImage: true)),
                               threshold: 0)
        second.crop = FaceCrop(centerX: 0.5, centerY: 0.5, side: 0.9, size: 16)
        let ens = FaceModel(ensemble: [model, second], threshold: 0.6)
        XCTAssertEqual(ens.embeddingSize, 24)
        let both = try ens.embed([photo, centre])
        let parts = Tensor.concat([try model.embed([photo, centre]), try second.embed([photo, centre])], axis: 1) * (1 / Float(2).squareRoot())
        XCTAssert(both.allClose(parts, atol: 1e-6))
        XCTAssertEqual(Double(both.square().sum(axes: [1]).scalars[0]), 1, accuracy: 1e-4)
        let ensPath = testTemp("ensemble-face.safetensors")
        try ens.save(to: ensPath)
        let ensBack = try FaceModel.load(ensPath)
        XCTAssertEqual(ensBack.members.count, 2)
        XCTAssertEqual(ensBack.members.map(\.crop), [model.crop, second.crop])
        XCTAssertEqual(ensBack.threshold, 0.6)
        XCTAssertEqual(ensBack.fingerprint, ens.fingerprint)
        XCTAssertNotEqual(ensBack.fingerprint, model.fingerprint)
        XCTAssert(try ensBack.embed([photo, centre]).allClose(both, atol: 1e-5))
        // Keys in order, so saving the same model in another process writes the same bytes.
        let members = try XCTUnwrap(try SavedModel.load(ensPath).info.extra["face_members"])
        let sorted = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(members.utf8)),
                                                options: [.sortedKeys, .withoutEscapingSlashes])
        XCTAssertEqual(members, String(decoding: sorted, as: UTF8.self))
    }

    func testTrainerPathLearnsAndBatchesAreDeterministic() throws {
        // Four "people": colour blobs in different places, 6 photos each with noise.
        var rng = RandomGenerator(seed: 2)
        var pixels: [UInt8] = [], labels: [Int] = []
        for p in 0..<4 { for _ in 0..<6 {
            for c in 0..<3 { for y in 0..<20 { for x in 0..<20 {
                let on = (x / 10 == p % 2) && (y / 10 == p / 2) && c == p % 3
                pixels.append(UInt8(Swift.min(255, (on ? 200 : 40) + rng.nextInt(30))))
            } } }
            labels.append(p)
        } }
        var data = LabeledImages(pixels: pixels, labels: labels, imageShape: [3, 20, 20], classNames: ["a", "b", "c", "d"])
        data.normalization = Normalization(scale: 1 / 255)
        var aug = Augmentation()
        aug.flip = false
        aug.maxShift = 0.05
        let src = AugmentedFaces(images: data, augmentation: aug, size: 16, seed: 3)
        XCTAssert(src.batch([1, 5, 7]).inputs.allClose(src.batch([1, 5, 7]).inputs), "same indices, same batch")
        XCTAssertEqual(src.batch([1, 5, 7]).inputs.shape, [3, 3, 16, 16])
        var o = FaceTrainingOptions()
        o.loss = .cosface
        o.blocks = [1, 1]
        o.widths = [8, 16]
        o.embedding = 8
        o.epochs = 15
        o.batchSize = 8
        o.lr = 5e-3
        o.augmentation = aug
        o.progressStyle = .none
        o.checkpointPath = testTemp("wild-ckpt.safetensors")
        let info = ModelInfo(architecture: [:], classNames: data.classNames, inputShape: [3, 16, 16], normalization: Normalization(scale: 1 / 255, perImage: true))
        let (net, history) = try FaceTraining.fit(data, size: 16, options: o, info: info)
        XCTAssertEqual(history.count, 15)
        XCTAssertLessThan(history.last!.trainLoss, history.first!.trainLoss * 0.6, "\(history.map(\.trainLoss))")
        XCTAssert(FileManager.default.fileExists(atPath: o.checkpointPath!))
        // Embeddings of one person's photos are closer than another's.
        let x = data.batch(Array(0..<24)).inputs.centerCrop(width: 16, height: 16).standardizedPerImage()
        let e = net.embedding(x), v = e.scalars, d = e.shape[1]
        func cos(_ a: Int, _ b: Int) -> Float { (0..<d).reduce(0) { $0 + v[a * d + $1] * v[b * d + $1] } }
        var within: Float = 0, across: Float = 0
        for a in 0..<24 { for b in 0..<24 where a != b { if labels[a] == labels[b] { within += cos(a, b) / 120 } else { across += cos(a, b) / 432 } } }
        XCTAssertGreaterThan(within, across + 0.3, "within \(within), across \(across)")
    }

    func testCMYKAndGreyJPEGsBecomeRGBAndTruncatedOnesAreRefused() throws {
        // Adobe CMYK (inverted): C=255, M=0, Y=0, K=255 stored means no cyan ink... R = C*K/255.
        let w = 16, h = 8
        var cmyk: [UInt8] = []
        for _ in 0..<(w * h) { cmyk += [255, 128, 0, 255] }     // R 255, G 128, B 0
        let path = testTemp("cmyk.jpg")
        try Image.writeCMYKJPEG(path, width: w, height: h, cmyk: cmyk)
        let img = try Image.load(path)
        XCTAssertEqual(img.channels, 3)
        XCTAssertEqual(Int(img.pixels[0]), 255, accuracy: 4)
        XCTAssertEqual(Int(img.pixels[1]), 128, accuracy: 4)
        XCTAssertEqual(Int(img.pixels[2]), 0, accuracy: 4)
        let grey = testTemp("grey.jpg")
        try Image(width: 20, height: 20, channels: 1, pixels: [UInt8](repeating: 77, count: 400)).saveJPEG(grey)
        let g = try Image.load(grey).rgb()
        XCTAssertEqual(g.channels, 3)
        XCTAssertEqual(Int(g.pixels[4]), 77, accuracy: 2)
        let big = testTemp("big.jpg")
        try Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { UInt8(($0 * 13) % 256) }).saveJPEG(big)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: big))
        let cut = testTemp("cut.jpg")
        FileManager.default.createFile(atPath: cut, contents: bytes.prefix(bytes.count / 2))
        XCTAssertThrowsError(try Image.load(cut)) { XCTAssert("\($0)".contains(cut) && "\($0)".contains("truncated"), "\($0)") }
    }
}

extension WildFaceTests {
    /// The face model committed with Strata loads from the source tree, cuts its face box, gives
    /// unit embeddings and says how it was made.
    func testBuiltInModelLoadsAndEmbeds() throws {
        let fm = try FaceModel.builtIn()
        let nets = fm.networks
        XCTAssert(nets.allSatisfy { $0.crop != nil }, "each network of the LFW model cuts a face box")
        XCTAssert(fm.threshold > 0 && fm.threshold < 2, "distance threshold \(fm.threshold)")
        if fm.score == .snorm { XCTAssertEqual(fm.classCentres?.shape[0], fm.info.classNames.count, "S-norm against every training person") }
        XCTAssertNotNil(fm.info.extra["recipe"])
        XCTAssertGreaterThan(fm.info.classNames.count, 1000, "trained on all of lfw_train's people")
        var rng = RandomGenerator(seed: 9)
        let photo = Image(width: 250, height: 250, channels: 3, pixels: (0..<(250 * 250 * 3)).map { _ in UInt8(rng.nextInt(256)) })
        let e = try fm.embed([photo, photo.grayscale()])
        XCTAssertEqual(e.shape, [2, fm.embeddingSize])
        for r in 0..<2 { XCTAssertEqual(Double(e.slice(axis: 0, start: r, end: r + 1).square().sum().item), 1, accuracy: 1e-4) }

        // Many photos go through in chunks (and each chunk's views in several passes) with the
        // embeddings each photo has alone, in order; the loader sees each chunk once.
        // Seven photos, so no chunk or pass starts at the same photo as the first one.
        let photos = (0..<7).map { k in Image(width: 200 + 10 * k, height: 240, channels: 3, pixels: (0..<((200 + 10 * k) * 240 * 3)).map { _ in UInt8(rng.nextInt(256)) }) }
        let alone = try photos.map { try fm.embed([$0], views: 5) }
        let count = FaceModel.embedChunk + 3
        var asked: [Range<Int>] = []
        let all = try fm.embedInChunks(count, views: 5) { r in
            asked.append(r)
            return (r.map { photos[$0 % 7] }, r.map { "photo \($0)" })
        }
        XCTAssertEqual(asked, [0..<FaceModel.embedChunk, FaceModel.embedChunk..<count])
        XCTAssertEqual(all.shape, [count, fm.embeddingSize])
        for i in [0, 1, 2, 8, 40, FaceModel.embedChunk - 1, FaceModel.embedChunk, count - 1] {
            XCTAssert(all.slice(axis: 0, start: i, end: i + 1).allClose(alone[i % 7], atol: 1e-5), "photo \(i) embedded in a chunk differs from alone")
        }
        XCTAssertThrowsError(try fm.embedInChunks(0) { _ in ([], []) }) { XCTAssert("\($0)".contains("no photos"), "\($0)") }
    }
}

extension WildFaceTests {
    /// S-norm: each photo's cosines to the class centres give it a mean and spread; a pair's score
    /// is the mean of its two z-scores, put back on the cosine scale with the centres' own mean
    /// and spread (their cosines to each other, the diagonal left out). Checked by hand in Double.
    func testSNormAgainstHandComputation() throws {
        func unit(_ v: [Double]) -> [Double] { let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        func meanSD(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(xs.count)
            return (m, (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count)).squareRoot())
        }
        let centres = [[1, 0.2, 0, 0.1], [0, 1, 0.3, 0], [0.2, 0, 1, 0.5], [0.1, 0.4, 0, 1], [0.5, 0.5, 0.5, 0]].map(unit)
        let photos = [[0.9, 0.3, 0.1, 0.2], [0.2, 0.8, 0.4, 0.1], [0.5, 0.5, 0.5, 0.5]].map(unit)
        let scorer = FaceScorer(centres: Tensor(centres.flatMap { $0.map(Float.init) }, shape: [5, 4]))
        let rowStats = centres.indices.map { i in meanSD(centres.indices.filter { $0 != i }.map { dot(centres[i], centres[$0]) }) }
        let mu = rowStats.map(\.0).reduce(0, +) / 5, sd = rowStats.map(\.1).reduce(0, +) / 5
        let e = Tensor(photos.flatMap { $0.map(Float.init) }, shape: [3, 4])
        let d = scorer.distances(e, e)
        for a in 0..<3 { for b in 0..<3 {
            let s = dot(photos[a], photos[b])
            let (ma, sa) = meanSD(centres.map { dot(photos[a], $0) }), (mb, sb) = meanSD(centres.map { dot(photos[b], $0) })
            let z = ((s - ma) / sa + (s - mb) / sb) / 2
            XCTAssertEqual(Double(d[a][b]), 1 - (mu + sd * z), accuracy: 1e-4, "pair \(a),\(b)")
        } }
        // Only the listed pairs, as in the full matrix.
        let listed = [(0, 1), (2, 0), (1, 1), (2, 2), (1, 2)]
        for (k, dk) in scorer.distances(e, pairs: listed).enumerated() { XCTAssertEqual(dk, d[listed[k].0][listed[k].1], accuracy: 1e-6, "pair \(listed[k])") }
        for (k, dk) in FaceScorer.cosine.distances(e, pairs: listed).enumerated() {
            XCTAssertEqual(Double(dk), 1 - dot(photos[listed[k].0], photos[listed[k].1]), accuracy: 1e-5, "cosine pair \(listed[k])")
        }
        XCTAssertEqual(Double(scorer.distance(e.slice(axis: 0, start: 0, end: 1).scalars, e.slice(axis: 0, start: 1, end: 2).scalars)), Double(d[0][1]), accuracy: 1e-6)
        // Plain cosine is 1 - cos.
        XCTAssertEqual(Double(FaceScorer.cosine.distances(e, e)[0][2]), 1 - dot(photos[0], photos[2]), accuracy: 1e-5)

        // A model's centres are its head's unit rows; the score travels in the model file, and an
        // ensemble's centres sit side by side like its embeddings.
        RandomGenerator.manualSeed(4)
        func model(_ channels: Int) -> FaceModel {
            let net = FaceNet(classes: 6, loss: .cosface, embedding: 8, widths: [8], inputSize: (16, 16), channels: channels, blocks: [1])
            net.eval()
            var m = FaceModel(net: net, info: ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: (0..<6).map(String.init),
                                                        inputShape: [channels, 16, 16], normalization: Normalization(scale: 1 / 255, perImage: true)),
                              threshold: 0.5)
            m.crop = FaceCrop(centerX: 0.5, centerY: 0.5, side: 0.8, size: 16)
            return m
        }
        var one = model(3)
        XCTAssertEqual(one.score, .cosine)
        XCTAssertNil(one.scorer.centres)
        one.score = .snorm
        let w = (one.net as! FaceNet).head.weight.value.scalars
        let c = one.classCentres!
        XCTAssertEqual(c.shape, [6, 8])
        let row0 = unit(Array(w[0..<8]).map(Double.init))
        for k in 0..<8 { XCTAssertEqual(Double(c.scalars[k]), row0[k], accuracy: 1e-5) }
        let path = testTemp("snorm-face.safetensors")
        try one.save(to: path)
        let back = try FaceModel.load(path)
        XCTAssertEqual(back.score, .snorm)
        XCTAssert(back.scorer.centres!.allClose(c, atol: 1e-5))
        var ens = FaceModel(ensemble: [one, model(1)], threshold: 0.7)
        XCTAssertEqual(ens.score, .snorm, "an ensemble takes its first member's score")
        XCTAssertEqual(ens.classCentres!.shape, [6, 16])
        XCTAssertEqual(Double(ens.classCentres!.slice(axis: 0, start: 2, end: 3).square().sum().item), 1, accuracy: 1e-4)
        ens.views = 5
        XCTAssertEqual(FaceModel(ensemble: [ens], threshold: 0.3).views, 5, "one model given alone keeps its views")
    }
}
