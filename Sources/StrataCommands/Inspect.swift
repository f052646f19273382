import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an HTML report of what every layer learned: filters, feature maps, linear probes, top images, saliency, embedding, training curves.")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .customLong("image"), help: "Input image, or folder of them, for feature maps and saliency (repeatable; default: the first test images); resized to the model's input as predict does.")
    var images: [String] = []

    @Option(help: "For a text model: the text whose attention maps to draw.")
    var text: String?

    @Option(help: "For an audio model: the WAV recording whose spectrogram feature maps to draw.")
    var wav: String?

    @Option(help: "For a face model of several networks: which one to show (1 = the first).")
    var member: Int = 1

    @Option(help: "For a face model: cut photos as another framing (cx,cy,side of the part that matches a training photo), as in `faces train --frame`.")
    var frame: FrameArgument?

    @Option(name: .customLong("layer"), help: "Layer to show (repeatable; default: all).")
    var layers: [String] = []

    @Option(help: "Output folder.")
    var out: String = "inspect-report"

    @Option(help: "Training images for the linear probes.")
    var probeTrain: Int = 10_000

    @Option(help: "Test images the probes are scored on.")
    var probeTest: Int = 5_000

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line: probe accuracies and the files written.")
    var json = false

    func validate() throws {
        if probeTrain < 10 { throw ValidationError("--probe-train must be at least 10, got \(probeTrain)") }
        if probeTest < 10 { throw ValidationError("--probe-test must be at least 10, got \(probeTest)") }
        if member < 1 { throw ValidationError("--member must be at least 1, got \(member)") }
        if let t = text, t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--text: empty text") }
    }

    func run() throws {
        threadOptions.apply()
        let started = Date()
        let model = modelOptions.model
        // A face model with a face box: one of its networks, on photos cut as that network sees them.
        let loaded = try modelOptions.load()
        let face: (SavedModel, FaceCrop)?
        do { face = try FaceModel.network(loaded, source: model, member: member) } catch let e as StrataError where e.message.contains("no network") {
            throw StrataError("--member \(member): \(e.message)")
        }
        if face == nil && member != 1 { throw StrataError("--member \(member): \(model) is a single network") }
        let saved = face?.0 ?? loaded
        let cut: ((Image) -> Image)? = face.map { _, box in { [frame] in box.apply(frame?.crop.reframe($0) ?? $0) } }
        if text != nil || wav != nil {
            let files: [String]
            do {
                files = try text.map { try Inspector.textReport(saved, text: $0, outDir: out) } ?? Inspector.audioReport(saved, wav: wav!, outDir: out)
            } catch let e as StrataError { throw StrataError("\(model): \(e.message)") }
            return json ? printJSON(["report": files[0], "files": files]) : print("wrote \(files[0]) and \(files.count - 1) more files")
        }
        if saved.model is GCN {   // a graph network, on its graph
            let r = try Inspector.graphReport(saved, graph: try Cora.load(dataOptions.dataDir ?? "../shared/data/cora"), outDir: out)
            return json ? printJSON(["report": r.files[0], "files": r.files, "probes": r.probes.map { ["layer": $0.layer, "accuracy": $0.accuracy] }])
                : print("wrote \(r.files[0]); probes: " + r.probes.map { "\($0.layer) \(String(format: "%.4f", $0.accuracy))" }.joined(separator: ", "))
        }
        let inputs = try Inspector.loadImages(images, for: saved.info, cut: cut)
        let (train, test) = try dataOptions.load(for: saved.info, transform: cut)
        guard train.imageShape == saved.info.inputShape else {
            throw StrataError("\(model): the model takes \(saved.info.inputShape) inputs, \(dataOptions.data) images are \(train.imageShape)")
        }
        guard test.count >= 3 else {
            throw StrataError("\(dataOptions.data): too few images to hold some out for the probes (\(train.count + test.count) in all; give a folder with at least 2 photos of a few people)")
        }
        var options = InspectOptions()
        (options.probeTrain, options.probeTest, options.layers) = (min(probeTrain, train.count), min(probeTest, test.count), layers.isEmpty ? nil : layers)
        let result = try Inspector.report(saved, train: train, test: test, images: inputs, outDir: out, options: options)
        let seconds = Date().timeIntervalSince(started)
        if json {
            return printJSON(["report": result.files[0], "seconds": round1(seconds), "files": result.files,
                              "probes": result.probes.map { ["depth": $0.depth, "layer": $0.layer, "type": $0.type, "features": $0.features, "accuracy": $0.accuracy] }])
        }
        print("layer-by-layer linear probes (logistic regression, \(options.probeTrain) train / \(options.probeTest) test images):")
        print(result.probes.map { p in
            "  " + "\(p.depth)".leftPad(3) + "  " + "\(p.layer) \(p.type)".rightPad(22) + "\(p.features)".leftPad(6) + " features  " + String(format: "%.4f", p.accuracy)
        }.joined(separator: "\n"))
        print(String(format: "wrote %@ and %d more files in %.1f s", result.files[0], result.files.count - 1, seconds))
    }
}
