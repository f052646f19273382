import ArgumentParser
import Foundation
import Strata

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for PNG, JPEG or PGM images (resized to the model's input).")

    @Option(help: "Model file (.safetensors).")
    var model: String

    @Option(help: "Architecture of a weights-only file: mlp or cnn.")
    var arch: String?

    @Argument(help: "Image files.")
    var images: [String]

    @Option(help: "Show only the K most probable classes.")
    var top: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1, got \(k)") }
    }

    func run() throws {
        threadOptions.apply()
        let saved = try loadModel(model, arch: arch)
        let (c, h, w) = (saved.info.inputShape[0], saved.info.inputShape[1], saved.info.inputShape[2])
        var prepared: [Image] = []
        for path in images {
            var img = try Image.load(path)
            img = c == 1 ? img.grayscale() : img.rgb()
            prepared.append(img.resized(width: w, height: h))
        }
        saved.model.eval()
        let probs = noGrad { saved.model(try! saved.inputs(prepared)).softmax() }
        let names = saved.info.classNames
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
