import Foundation
import StrataCore
import StrataNN
import StrataData

extension Inspector {
    /// An attention map as an SVG heat map with the tokens along both axes (rows: queries,
    /// columns: keys; viridis, 0 to the row's maximum).
    public static func attentionSVG(_ weights: [Float], tokens: [String], title: String) -> String {
        let n = tokens.count, cell = 18, left = 90, top = 110
        let w = left + n * cell + 20, h = top + n * cell + 20
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"16\" font-size=\"13\">\(SVGChart.escape(title))</text>\n"
        for (i, t) in tokens.enumerated() {
            s += "<text x=\"\(left - 4)\" y=\"\(top + i * cell + 13)\" text-anchor=\"end\">\(SVGChart.escape(t))</text>\n"
            s += "<text transform=\"translate(\(left + i * cell + 12) \(top - 4)) rotate(-60)\">\(SVGChart.escape(t))</text>\n"
        }
        for r in 0..<n {
            let row = weights[(r * n)..<((r + 1) * n)]
            let hi = Swift.max(row.max() ?? 1, 1e-9)
            for c in 0..<n {
                let (R, G, B) = ColorMap.viridis(weights[r * n + c] / hi)
                s += "<rect x=\"\(left + c * cell)\" y=\"\(top + r * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(R),\(G),\(B))\"/>\n"
            }
        }
        return s + "</svg>\n"
    }

    /// The text report of a text model for one text: its words, and the attention maps of each
    /// encoder layer.
    public static func textReport(_ saved: SavedModel, text: String, outDir: String) throws -> [String] {
        guard case let .text(tok, length) = try Preprocessing(saved.info) else { throw StrataError("not a text model (no tokenizer in its metadata)") }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw StrataError("the text is empty") }
        return try textReport(saved, tokens: tok.tokens(text, length: length), ids: tok.batch([text], length: length), outDir: outDir)
    }

    /// The audio report of an audio model for one WAV recording.
    public static func audioReport(_ saved: SavedModel, wav: String, outDir: String) throws -> [String] {
        guard case let .audio(feats) = try Preprocessing(saved.info) else { throw StrataError("not an audio model (no audio features in its metadata)") }
        return try audioReport(saved, spectrogram: feats.standardize(feats.image(try Audio.loadWAV(wav)).unsqueeze(0)), outDir: outDir)
    }

    /// Input images for the report, from files or folders of them: each photo converted to the
    /// model's channels, cut by `cut` (a face box) when given, and resized to the model's input,
    /// as `strata predict` prepares photos.
    public static func loadImages(_ paths: [String], for info: ModelInfo, cut: ((Image) -> Image)? = nil) throws -> [(name: String, image: Image)] {
        if paths.isEmpty { return [] }
        let prep = try Preprocessing(info)
        guard case let .image(c, h, w, _) = prep, c == 1 || c == 3 else {
            let wanted = prep.kind == "audio" ? "WAV recordings (--wav)" : prep.kind == "text" ? "texts (--text)" : "\(info.inputShape) inputs"
            throw StrataError("--image: the model takes \(wanted), not grey or RGB images")
        }
        return try ImageFolder.expanding(paths).map { path in
            var img = try Image.load(path)
            img = c == 3 ? img.rgb() : img.grayscale()
            if let cut { img = cut(img) }   // a face model: its box is cut out of any photo
            return ((path as NSString).lastPathComponent, img.resized(width: w, height: h))
        }
    }

    /// Report for a text model on one text: class probabilities and, for a Transformer, every
    /// layer's and head's attention over the text's tokens.
    public static func textReport(_ saved: SavedModel, tokens: [String], ids: Tensor, outDir: String) throws -> [String] {
        try prepareFolder(outDir)
        var files: [String] = []
        var html = HTMLPage(title: "Strata inspect: text")
        let model = saved.model
        model.eval()
        let probs = noGrad { model(ids).softmax() }.scalars
        html.section("Prediction", "<p>\(HTMLPage.escape(tokens.joined(separator: " ")))</p>"
            + HTMLPage.table(["Class", "Probability"], saved.info.classNames.enumerated().map { [$1, String(format: "%.4f", probs[$0])] }))
        let maps = (model as? EncoderClassifier)?.attentionMaps ?? ((model as? TextClassifier).flatMap { $0.kind == .transformer ? $0.attentionMaps : nil }) ?? []
        if !maps.isEmpty {
            var body = "<p>Rows are query tokens, columns the tokens they attend to (padding is never attended to and not shown).</p>"
            let n = tokens.count, t = ids.shape[1]
            for (l, map) in maps.enumerated() {
                let heads = map.shape[1]
                body += "<h3>layer \(l + 1)</h3><div class=\"row\">"
                for hd in 0..<heads {
                    var w = [Float]()
                    for r in 0..<n { for c in 0..<n { w.append(map[0, hd, r, c]) } }
                    _ = t
                    let name = "attention_l\(l + 1)_h\(hd + 1).svg"
                    let path = (outDir as NSString).appendingPathComponent(name)
                    try FileIO.writeAtomically(Data(attentionSVG(w, tokens: tokens, title: "layer \(l + 1), head \(hd + 1)").utf8), to: path)
                    files.append(path)
                    body += "<figure><img src=\"\(name)\" alt=\"attention layer \(l + 1) head \(hd + 1)\"></figure>"
                }
                body += "</div>"
            }
            html.section("Attention maps", body)
        } else {
            html.section("Attention maps", "<p>This model (\(model.typeName)\((model as? TextClassifier).map { " " + $0.kind.rawValue } ?? "")) has no attention layers; train with --model transformer to see them.</p>")
        }
        let index = (outDir as NSString).appendingPathComponent("index.html")
        try FileIO.writeAtomically(Data(html.render().utf8), to: index)
        return [index] + files
    }

    /// Report for an audio model on one recording: class probabilities, the log-mel spectrogram,
    /// first-layer filters and the feature maps of every convolutional layer.
    public static func audioReport(_ saved: SavedModel, spectrogram x: Tensor, outDir: String) throws -> [String] {
        try prepareFolder(outDir)
        var files: [String] = []
        func png(_ img: Image, _ name: String) throws {
            let path = (outDir as NSString).appendingPathComponent(name)
            try img.savePNG(path)
            files.append(path)
        }
        var html = HTMLPage(title: "Strata inspect: audio")
        let model = saved.model
        let probs = noGrad { model(x).softmax() }.scalars
        html.section("Prediction", HTMLPage.table(["Class", "Probability"], saved.info.classNames.enumerated().map { [$1, String(format: "%.4f", probs[$0])] }))
        // Frequency runs upwards: flip the band axis.
        func flipped(_ t: Tensor) -> (values: [Float], w: Int, h: Int) {
            let (h, w) = (t.shape[t.rank - 2], t.shape[t.rank - 1])
            let v = t.scalars
            return ((0..<(h * w)).map { v[(h - 1 - $0 / w) * w + $0 % w] }, w, h)
        }
        let spec = flipped(x.slice(axis: 0, start: 0, end: 1).reshape([x.shape[2], x.shape[3]]))
        try png(ColorMap.heatmap(spec.values, width: spec.w, height: spec.h).scaled(by: 4), "spectrogram.png")
        html.section("Log-mel spectrogram", "<p>\(spec.h) mel bands (low at the bottom) by \(spec.w) frames, standardised per band.</p><img src=\"spectrogram.png\" alt=\"spectrogram\">")
        if let (filters, caption) = firstLayerFilters(model, inputShape: saved.info.inputShape) {
            try png(filters, "filters.png")
            html.section("First-layer filters", "<p>\(caption)</p><img src=\"filters.png\" alt=\"filters\">")
        }
        let convs = model.namedModules().filter { $0.1 is Conv2D }.map { $0.0 }
        let maps = try model.layerOutputs(x, layers: convs)
        var body = "<div class=\"row\">"
        for l in convs {
            let t = maps[l]!
            let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
            let tiles = (0..<c).map { ch -> Image in
                let f = flipped(t.slice(axis: 1, start: ch, end: ch + 1).reshape([h, w]))
                return ColorMap.heatmap(f.values, width: f.w, height: f.h).scaled(by: Swift.max(1, 100 / Swift.max(h, w)))
            }
            let name = "fmap_\(l).png"
            try png(Image.grid(tiles, columns: 4), name)
            body += "<figure><img src=\"\(name)\" alt=\"feature maps of \(l)\"><figcaption>layer \(l): \(c) maps of \(h) bands x \(w) frames</figcaption></figure>"
        }
        html.section("Spectrogram feature maps", body + "</div>")
        let index = (outDir as NSString).appendingPathComponent("index.html")
        try FileIO.writeAtomically(Data(html.render().utf8), to: index)
        return [index] + files
    }
}
