import Foundation
import StrataCore
import StrataNN
import StrataData

/// What `Inspector.report` measures and draws.
public struct InspectOptions {
    /// Training images the linear probes are fitted on, and test images they are scored on.
    public var probeTrain = 10_000
    public var probeTest = 5_000
    public var probeEpochs = 20
    /// Units per layer shown with the test images that excite them most.
    public var unitsPerLayer = 6
    /// Test points in the PCA scatter.
    public var embeddingPoints = 2_000
    /// Layers for feature maps and top images (default: every feature layer).
    public var layers: [String]?
    public var seed = 0

    public init() {}
}

/// One row of the probe table.
public struct ProbeResult: Codable {
    public var depth: Int
    public var layer: String
    public var type: String
    public var features: Int
    public var accuracy: Double
}

public struct InspectResult {
    public var probes: [ProbeResult]
    /// Paths of every file written, index.html first.
    public var files: [String]
}

/// Builds the "see the hierarchy" report: a self-contained folder with index.html, PNG images
/// and SVG charts (no scripts, no network).
///
/// ```swift
/// let saved = try SavedModel.load("fashion-cnn.safetensors")
/// let r = try Inspector.report(saved, train: train, test: test, images: [], outDir: "report")
/// r.probes.map { ($0.layer, $0.accuracy) }
/// ```
public enum Inspector {
    /// Largest spatial grid a convolutional layer's maps are average-pooled to before probing.
    static let probeGrid = 4

    public static func report(_ saved: SavedModel, train: LabeledImages, test: LabeledImages, images: [(name: String, image: Image)],
                              outDir: String, options: InspectOptions = InspectOptions()) throws -> InspectResult {
        let model = saved.model, info = saved.info
        model.eval()
        try prepareFolder(outDir)
        var files: [String] = []
        func path(_ name: String) -> String { (outDir as NSString).appendingPathComponent(name) }
        func writeText(_ text: String, _ name: String) throws {
            try FileIO.writeAtomically(Data(text.utf8), to: path(name))
            files.append(path(name))
        }
        func writePNG(_ img: Image, _ name: String) throws {
            try img.savePNG(path(name))
            files.append(path(name))
        }
        // Feature layers that actually run in the forward pass (a head used through its weights
        // alone, like a cosine-margin head, produces no output of its own).
        let trial = try model.layerOutputs(Tensor.zeros([2] + info.inputShape), layers: model.featureLayerNames())
        let featureLayers = model.featureLayerNames().filter { trial[$0] != nil }
        let shown = try (options.layers ?? featureLayers).filter { name in
            if trial[name] != nil { return true }
            _ = try model.layerOutputs(Tensor.zeros([2] + info.inputShape), layers: [name])   // unknown names throw
            return false
        }
        let types = Dictionary(model.namedModules().map { ($0.0, $0.1.typeName) }, uniquingKeysWith: { a, _ in a })
        var html = HTMLPage(title: "Strata inspect")

        // 1. Summary.
        let rows = model.summary(inputShape: info.inputShape)
        html.section("Model", """
            <p>Input \(info.inputShape), \(model.parameterCount) trainable parameters, classes: \(info.classNames.joined(separator: ", ")).</p>
            """ + HTMLPage.table(["Layer", "Type", "Output shape", "Parameters"], rows.map { [$0.name, $0.type, "\($0.outputShape)", "\($0.parameters)"] }))

        // 2. First-layer filters.
        if let (img, caption) = firstLayerFilters(model, inputShape: info.inputShape) {
            try writePNG(img, "filters.png")
            html.section("First-layer filters", "<p>\(caption)</p><img src=\"filters.png\" alt=\"first-layer filters\">")
        }

        // Inputs for feature maps and saliency: the given images, or the first test images.
        var inputs = images
        if inputs.isEmpty { inputs = (0..<3).map { ("test image \($0) (\(test.classNames[test.labels[$0]]))", test.image($0)) } }
        let x = try Preprocessing(saved.info).tensor(images: inputs.map { $0.image })

        // 3. Feature maps of every convolutional layer (4-D outputs) for each input.
        let modules = Dictionary(model.namedModules().map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        let convLayers = shown.filter { name in modules[name] is Conv2D }
        let maps = try model.layerOutputs(x, layers: convLayers)
        var fm = ""
        for (i, inp) in inputs.enumerated() {
            try writePNG(inp.image.rgb().scaled(by: 4), "input_\(i).png")
            fm += "<h3>\(HTMLPage.escape(inp.name))</h3><div class=\"row\"><figure><img src=\"input_\(i).png\" alt=\"input \(i)\"><figcaption>input</figcaption></figure>"
            for l in convLayers {
                let t = maps[l]!   // [N, C, H, W]
                let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
                let v = t.scalars
                let hw = h * w
                let zoom = Swift.max(1, 56 / Swift.max(h, w))
                let tiles = (0..<c).map { ch -> Image in
                    let start: Int = (i * c + ch) * hw
                    let plane = Array(v[start..<(start + hw)])
                    return ColorMap.heatmap(plane, width: w, height: h).scaled(by: zoom)
                }
                let name = "fmap_\(i)_\(l).png"
                try writePNG(Image.grid(tiles, columns: Int(Double(c).squareRoot().rounded(.up))), name)
                fm += "<figure><img src=\"\(name)\" alt=\"feature maps of layer \(l)\"><figcaption>layer \(l) (\(types[l] ?? "")), \(c) maps \(h)x\(w)</figcaption></figure>"
            }
            fm += "</div>"
        }
        if !convLayers.isEmpty { html.section("Feature maps", "<p>Each map in viridis, scaled to its own range (dark = low, yellow = high).</p>" + fm) }

        // 4. Linear probes, layer 0 (pixels) and every feature layer, on the same images.
        var rng = RandomGenerator(seed: options.seed)
        let trainIdx = Array(rng.permutation(train.count).prefix(options.probeTrain))
        let testIdx = Array(0..<Swift.min(options.probeTest, test.count))
        let probeLayers = featureLayers
        let trainFeats = try probeFeatures(model, train, trainIdx, probeLayers)
        let testFeats = try probeFeatures(model, test, testIdx, probeLayers)
        let trainLabels = trainIdx.map { train.labels[$0] }, testLabels = testIdx.map { test.labels[$0] }
        var probes: [ProbeResult] = []
        for (depth, name) in ([""] + probeLayers).enumerated() {
            let p = LinearProbe.fit(features: trainFeats[name]!, labels: trainLabels, classes: train.classNames.count,
                                    epochs: options.probeEpochs, seed: options.seed)
            probes.append(ProbeResult(depth: depth, layer: name.isEmpty ? "pixels" : name, type: name.isEmpty ? "input" : types[name] ?? "",
                                      features: trainFeats[name]!.shape[1], accuracy: p.accuracy(features: testFeats[name]!, labels: testLabels)))
        }
        var chart = SVGChart(title: "Linear probe accuracy by depth", xLabel: "layer", yLabel: "test accuracy")
        chart.add(SVGChart.Series(name: "probe", points: probes.map { (Double($0.depth), $0.accuracy) }))
        chart.xTickLabels = Dictionary(uniqueKeysWithValues: probes.map { ($0.depth, $0.layer) })
        chart.width = 760
        try writeText(chart.render(), "probes.svg")
        html.section("Linear probes", """
            <p>A multinomial logistic regression fitted on each layer's activations for \(trainIdx.count) training images and scored on
            \(testIdx.count) test images. Convolutional maps are average-pooled to at most \(probeGrid)x\(probeGrid) per channel first;
            layer 0 is the raw pixels (the classical baseline).</p>
            """ + HTMLPage.table(["Depth", "Layer", "Type", "Features", "Test accuracy"],
                                 probes.map { ["\($0.depth)", $0.layer, $0.type, "\($0.features)", String(format: "%.4f", $0.accuracy)] })
            + "<img src=\"probes.svg\" alt=\"probe accuracy by depth\">")

        // 5. What units look for: top-9 test images per unit.
        var unitsHTML = ""
        let unitScores = try unitActivations(model, test, testIdx, shown)
        for l in shown {
            guard let scores = unitScores[l] else { continue }
            let units = scores.shape[1]
            // The most variable units (the most selective), a few per layer.
            let s = scores.scalars
            var variance = [Double](repeating: 0, count: units)
            for u in 0..<units {
                var m = 0.0, m2 = 0.0
                for r in 0..<testIdx.count { let v = Double(s[r * units + u]); m += v; m2 += v * v }
                m /= Double(testIdx.count)
                variance[u] = m2 / Double(testIdx.count) - m * m
            }
            let pick = variance.indices.sorted { variance[$0] > variance[$1] }.prefix(options.unitsPerLayer)
            unitsHTML += "<h3>layer \(l) (\(types[l] ?? ""))</h3><div class=\"row\">"
            for u in pick {
                let top = (0..<testIdx.count).sorted { s[$0 * units + u] > s[$1 * units + u] }.prefix(9)
                let name = "units_\(l)_\(u).png"
                try writePNG(Image.grid(top.map { test.image(testIdx[$0]).rgb().scaled(by: 2) }, columns: 3), name)
                unitsHTML += "<figure><img src=\"\(name)\" alt=\"unit \(u) of layer \(l)\"><figcaption>unit \(u)</figcaption></figure>"
            }
            unitsHTML += "</div>"
        }
        html.section("What units look for", "<p>For the most variable units of each layer, the 9 test images that excite them most (channel mean for convolutional maps).</p>" + unitsHTML)

        // 6. Saliency.
        let (grad, cls) = model.saliency(x)
        var sal = "<div class=\"row\">"
        let (c, h, w) = (info.inputShape[0], info.inputShape[1], info.inputShape[2])
        let g = grad.scalars
        for i in 0..<inputs.count {
            var heat = [Float](repeating: 0, count: h * w)
            for p in 0..<(h * w) { for ch in 0..<c { heat[p] = Swift.max(heat[p], Swift.abs(g[(i * c + ch) * h * w + p])) } }
            let hm = ColorMap.heatmap(heat, width: w, height: h, low: 0)
            let pair = Image.grid([inputs[i].image.rgb(), hm, inputs[i].image.rgb().blended(with: hm, weight: 0.6)], columns: 3, gap: 1)
            let name = "saliency_\(i).png"
            try writePNG(pair.scaled(by: 4), name)
            sal += "<figure><img src=\"\(name)\" alt=\"saliency \(i)\"><figcaption>\(HTMLPage.escape(inputs[i].name)): predicted \(HTMLPage.escape(info.classNames[cls[i]]))</figcaption></figure>"
        }
        html.section("Class saliency", "<p>|d score(predicted class) / d pixel|: input, heat map (viridis), overlay.</p>" + sal + "</div>")

        // 7. Embedding space: the last hidden layer (the input of the final layer), PCA to 2-D.
        if probeLayers.count >= 2 {
            let last = probeLayers[probeLayers.count - 2]
            let n = Swift.min(options.embeddingPoints, testIdx.count)
            let emb = testFeats[last]!.slice(axis: 0, start: 0, end: n)
            let pca = PCA(emb, components: 2)
            let xy = pca.transform(emb).scalars
            var scatter = SVGChart(title: "Layer \(last) (\(types[last] ?? "")) in 2-D (PCA, \(String(format: "%.0f%%", 100 * pca.explainedVarianceRatio.reduce(0, +))) of variance)",
                                   xLabel: "component 1", yLabel: "component 2")
            for (k, cname) in test.classNames.enumerated() {
                let pts = (0..<n).filter { testLabels[$0] == k }.map { (Double(xy[2 * $0]), Double(xy[2 * $0 + 1])) }
                scatter.add(SVGChart.Series(name: cname, points: pts, style: .scatter, color: ColorMap.categorical[k % 10]))
                if k == 19 && test.classNames.count > 20 { break }   // a legend of 20 classes at most
            }
            scatter.width = 760
            scatter.height = 520
            try writeText(scatter.render(), "embedding.svg")
            html.section("Embedding space", "<p>\(n) test images; each point is one image's layer-\(last) activations.</p><img src=\"embedding.svg\" alt=\"embedding\">")
        }

        // 8. Training curves.
        if info.history.isEmpty {
            html.section("Training curves", "<p>This model file has no training history.</p>")
        } else {
            for (metric, title) in [("loss", "Loss"), ("accuracy", "Accuracy")] {
                var ch = SVGChart(title: "\(title) per epoch", xLabel: "epoch", yLabel: metric)
                let h = info.history
                ch.add(SVGChart.Series(name: "train", points: h.map { (Double($0.epoch), metric == "loss" ? $0.trainLoss : $0.trainAccuracy) }))
                let val = h.compactMap { r in (metric == "loss" ? r.valLoss : r.valAccuracy).map { (Double(r.epoch), $0) } }
                if !val.isEmpty { ch.add(SVGChart.Series(name: "validation", points: val)) }
                try writeText(ch.render(), "\(metric).svg")
            }
            html.section("Training curves", "<img src=\"loss.svg\" alt=\"loss\"><img src=\"accuracy.svg\" alt=\"accuracy\">")
        }

        try FileIO.writeAtomically(Data(html.render().utf8), to: path("index.html"))
        files.insert(path("index.html"), at: 0)
        return InspectResult(probes: probes, files: files)
    }

    static func prepareFolder(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw StrataError("\(dir): cannot create the output folder (\(error.localizedDescription))")
        }
        let probe = (dir as NSString).appendingPathComponent(".strata-write-test")
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw StrataError("\(dir): the output folder is not writable")
        }
        unlink(probe)
    }

    /// First-layer weights as pictures: each convolution filter, or each unit of a first dense
    /// layer reshaped to the input image. Grey 128 is zero; one scale for all.
    static func firstLayerFilters(_ model: Module, inputShape: [Int]) -> (Image, String)? {
        guard let first = model.namedModules().first(where: { $0.1 is Conv2D || $0.1 is Linear }) else { return nil }
        let (c, kh, kw, count, data): (Int, Int, Int, Int, [Float])
        if let conv = first.1 as? Conv2D {
            let s = conv.weight.shape
            (c, kh, kw, count, data) = (s[1], s[2], s[3], s[0], conv.weight.value.scalars)
        } else if let fc = first.1 as? Linear, fc.inFeatures == inputShape.reduce(1, *) {
            (c, kh, kw, count, data) = (inputShape[0], inputShape[1], inputShape[2], Swift.min(fc.outFeatures, 64), fc.weight.value.scalars)
        } else {
            return nil
        }
        let scale = data.map { Swift.abs($0) }.max() ?? 1
        let tiles = (0..<count).map { f -> Image in
            var px = [UInt8](repeating: 0, count: kh * kw * (c == 3 ? 3 : 1))
            for p in 0..<(kh * kw) {
                if c == 3 {
                    for ch in 0..<3 { px[p * 3 + ch] = UInt8(128 + 127 * data[(f * 3 + ch) * kh * kw + p] / scale) }
                } else {
                    px[p] = UInt8(128 + 127 * data[f * c * kh * kw + p] / scale)   // first input channel
                }
            }
            return Image(width: kw, height: kh, channels: c == 3 ? 3 : 1, pixels: px).scaled(by: Swift.max(1, 48 / Swift.max(kh, kw)))
        }
        let what = first.1 is Conv2D ? "\(count) filters of layer \(first.0), \(kh)x\(kw)" : "weights of the first \(count) units of layer \(first.0), as \(kh)x\(kw) images"
        return (Image.grid(tiles, columns: Int(Double(count).squareRoot().rounded(.up)), gap: 3, background: 255), "The \(what) (grey = 0, white = positive, black = negative).")
    }

    /// Probe features per layer ("" = the input pixels), computed in batches so full-size
    /// activations never pile up: 4-D maps are average-pooled to at most 4x4 per channel.
    static func probeFeatures(_ model: Module, _ data: LabeledImages, _ idx: [Int], _ layers: [String]) throws -> [String: Tensor] {
        var parts: [String: [Tensor]] = [:]
        for start in stride(from: 0, to: idx.count, by: 500) {
            let b = data.batch(Array(idx[start..<Swift.min(start + 500, idx.count)]))
            let outs = try model.layerOutputs(b.inputs, layers: layers)
            parts["", default: []].append(b.inputs.flatten(startDim: 1))
            for l in layers { parts[l, default: []].append(pooledFeatures(outs[l]!)) }
        }
        return parts.mapValues { Tensor.concat($0, axis: 0) }
    }

    static func pooledFeatures(_ t: Tensor) -> Tensor {
        guard t.rank == 4 else { return t.flatten(startDim: 1) }
        let grid = Size2(Swift.min(t.shape[2], probeGrid), Swift.min(t.shape[3], probeGrid))
        return noGrad { adaptiveAvgPool2d(t, outputSize: grid) }.flatten(startDim: 1)
    }

    /// Per image, each unit's activation (channel mean for 4-D maps), for the chosen layers.
    static func unitActivations(_ model: Module, _ data: LabeledImages, _ idx: [Int], _ layers: [String]) throws -> [String: Tensor] {
        var parts: [String: [Tensor]] = [:]
        for start in stride(from: 0, to: idx.count, by: 500) {
            let b = data.batch(Array(idx[start..<Swift.min(start + 500, idx.count)]))
            let outs = try model.layerOutputs(b.inputs, layers: layers)
            for l in layers {
                let t = outs[l]!
                parts[l, default: []].append(t.rank == 4 ? t.mean(axes: [2, 3]) : t.flatten(startDim: 1))
            }
        }
        return parts.mapValues { Tensor.concat($0, axis: 0) }
    }
}

/// A plain HTML page with sections and tables, styled inline (no scripts or external files).
struct HTMLPage {
    let title: String
    var body = ""

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    mutating func section(_ heading: String, _ html: String) {
        body += "<section><h2>\(HTMLPage.escape(heading))</h2>\n\(html)\n</section>\n"
    }

    func render() -> String {
        """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>\(HTMLPage.escape(title))</title>
        <style>
        body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222 }
        table { border-collapse: collapse; margin: 1em 0 } td, th { border: 1px solid #ccc; padding: 3px 10px; text-align: left }
        .row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start }
        figure { margin: 4px } figcaption { font-size: 12px; color: #555 } img { image-rendering: pixelated }
        </style></head><body>
        <h1>\(HTMLPage.escape(title))</h1>
        \(body)
        </body></html>
        """
    }
}
