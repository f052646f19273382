import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for PNG, JPEG or PGM images (resized to the model's input).")

    @Option(help: "Model file (.safetensors).")
    var model: String

    @Option(help: "Architecture of a weights-only file: mlp or cnn.")
    var arch: String?

    @Argument(help: "Image files (PNG, JPEG, PGM) or WAV recordings.")
    var images: [String] = []

    @Option(help: "A text to classify (repeatable), for text models.")
    var text: [String] = []

    @Option(help: "Show only the K most probable classes.")
    var top: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        if images.isEmpty && text.isEmpty { throw ValidationError("give at least one image or WAV file, or --text") }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1, got \(k)") }
    }

    /// Model inputs for the arguments: texts through the model's tokenizer, WAV files through its
    /// audio features, images resized to its input.
    func inputs(_ saved: SavedModel) throws -> (Tensor, [String]) {
        if !text.isEmpty {
            guard let tj = saved.info.extra["tokenizer"], let tok = try? JSONDecoder().decode(TextTokenizer.self, from: Data(tj.utf8)) else {
                throw StrataError("\(model): not a text model (no tokenizer in its metadata); --text needs one")
            }
            for (i, t) in text.enumerated() where t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw StrataError("--text \(i + 1): empty text")
            }
            return (tok.batch(text, length: saved.info.inputShape[0]), text)
        }
        if images.allSatisfy({ $0.lowercased().hasSuffix(".wav") }) {
            guard let fj = saved.info.extra["audio_features"], let feats = try? JSONDecoder().decode(AudioFeatures.self, from: Data(fj.utf8)) else {
                throw StrataError("\(model): not an audio model (no audio features in its metadata)")
            }
            let imgs = try images.map { feats.image(try Audio.loadWAV($0)) }
            return (feats.standardize(Tensor.stack(imgs)), images)
        }
        guard saved.info.inputShape.count == 3 else { throw StrataError("\(model): not an image model; give --text or WAV files") }
        let (c, h, w) = (saved.info.inputShape[0], saved.info.inputShape[1], saved.info.inputShape[2])
        var prepared: [Image] = []
        for path in images {
            var img = try Image.load(path)
            img = c == 1 ? img.grayscale() : img.rgb()
            prepared.append(img.resized(width: w, height: h))
        }
        return (try saved.inputs(prepared), images)
    }

    func run() throws {
        threadOptions.apply()
        let saved = try loadModel(model, arch: arch)
        let (x, labels) = try inputs(saved)
        saved.model.eval()
        let probs = noGrad { saved.model(x).softmax() }
        let names = saved.info.classNames
        let images = labels
        var results: [[String: Any]] = []
        for (i, path) in images.enumerated() {
            let row = (0..<names.count).map { probs[i, $0] }
            let ranked = row.indices.sorted { row[$0] > row[$1] }
            let shown = Array(ranked.prefix(top ?? names.count))
            if json {
                results.append(["image": path, "predicted": names[ranked[0]], "probability": Double(row[ranked[0]]),
                                "probabilities": Dictionary(uniqueKeysWithValues: shown.map { (names[$0], Double(row[$0])) })])
            } else {
                print("\(path): \(names[ranked[0]]) (\(String(format: "%.1f", row[ranked[0]] * 100))%)")
                for k in shown { print("  " + names[k].padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.4f", row[k])) }
            }
        }
        if json { printJSON(["model": model, "predictions": results]) }
    }
}
