import ArgumentParser
import Foundation
import StrataONNX
import Strata
import StrataFaces

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for images (PNG, JPEG, WebP, HEIC; resized to the model's input), WAV recordings or texts.")

    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "Image files (PNG, JPEG, WebP, HEIC, AVIF, PGM) or WAV recordings, or folders of them.") var images: [String] = []
    @Option(help: "A text to classify (repeatable), for text models.") var text: [String] = []
    @Option(help: "A paper of the graph to classify (repeatable), for graph models (Cora's paper ids).") var node: [String] = []
    @Option(help: "For graph models: the graph's folder (default ../shared/data/cora).") var dataDir: String?
    @Option(help: "Show only the K most probable classes.") var top: Int?
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if images.isEmpty && text.isEmpty && node.isEmpty { throw ValidationError("give at least one image or WAV file, --text, or --node") }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1, got \(k)") }
        for (i, t) in text.enumerated() where t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--text \(i + 1): empty text") }
    }

    func run() throws {
        threadOptions.apply()
        let saved = try modelOptions.load()
        let images = try ImageFolder.expanding(self.images, extensions: ImageFolder.extensions.union(["wav"]))
        let x: Tensor
        let folder = dataDir ?? "../shared/data/cora"
        do {
            let prep = try Preprocessing(saved.info)
            if !node.isEmpty {
                x = try Preprocessing.graphNodes(node, folder: folder, model: saved.model)
            } else {
                x = text.isEmpty ? try prep.tensor(files: images) : try prep.tensor(texts: text)
                if let w = prep.truncationWarning(texts: text) { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            }
        } catch let e as StrataError {
            // An error that names an input file (an unreadable photo) is that file's; the rest
            // are about what the model takes, and name the model.
            if (images + [folder]).contains(where: { e.message.hasPrefix($0 + ":") }) { throw e }
            throw StrataError("\(modelOptions.model): \(e.message)")
        }
        let inputs = !node.isEmpty ? node : text.isEmpty ? images : text
        // An imported graph's run throws its errors and has its output shape checked.
        let predictions = try (saved.model as? OnnxModel).map { saved.predictions(scores: try $0.scores(x, classes: saved.info.classNames.count)) }
            ?? saved.predict(x)
        if json {
            return printJSON(["model": modelOptions.model, "predictions": zip(inputs, predictions).map { input, p in
                ["image": input, "predicted": p.label, "probability": Double(p.probability),
                 "probabilities": Dictionary(uniqueKeysWithValues: p.ranked.prefix(top ?? p.ranked.count).map { ($0.name, Double($0.probability)) })] as [String: Any]
            }])
        }
        print(zip(inputs, predictions).map { input, p in
            (["\(input): \(p.label) (\(String(format: "%.1f", p.probability * 100))%)"]
             + p.ranked.prefix(top ?? p.ranked.count).map { "  " + $0.name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.4f", $0.probability) })
                .joined(separator: "\n")
        }.joined(separator: "\n"))
    }
}
