import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an HTML report of what every layer learned: filters, feature maps, linear probes, top images, saliency, embedding, training curves.")

    @Option(help: "Model file (.safetensors).")
    var model: String

    @Option(help: "Architecture of a weights-only file: mlp or cnn.")
    var arch: String?

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .customLong("image"), help: "Input image for feature maps and saliency (repeatable; default: the first test images). Must match the model's input size.")
    var images: [String] = []

    @Option(help: "For a text model: the text whose attention maps to draw.")
    var text: String?

    @Option(help: "For an audio model: the WAV recording whose spectrogram feature maps to draw.")
    var wav: String?

    @Option(help: "For a face model of several networks: which one to show (1 = the first).")
    var member: Int = 1

    @Option(help: "For a face model: cut photos as another framing (cx,cy,side of the part that matches a training photo), as in `faces train --frame`.")
    var frame: String?

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
        try checkFrame(frame, "--frame")
    }

    func run() throws {
        threadOptions.apply()
        let started = Date()
        var saved = try loadModel(model, arch: arch)
        // A face model with a face box (one trained on photos in the wild): show one of its
        // networks, on photos cut exactly as that network sees them.
        var crop: FaceCrop?
        if saved.model is FaceEnsemble || saved.info.extra["face_crop"] != nil {
            let fm = try FaceModel.load(model)
            let nets = fm.networks
            guard member <= nets.count else { throw StrataError("--member \(member): \(model) has \(nets.count) network(s)") }
            let m = nets[member - 1]
            saved = SavedModel(model: m.net, info: m.info)
            crop = m.crop
        } else if member != 1 {
            throw StrataError("--member \(member): \(model) is a single network")
        }
        let reframe = frame.flatMap(FaceCrop.parseFrame)
        let cut: ((Image) -> Image)? = crop.map { box in { box.apply(reframe?.reframe($0) ?? $0) } }
        if text != nil || wav != nil {
            let files: [String]
            if let text {
                guard let tj = saved.info.extra["tokenizer"], let tok = try? JSONDecoder().decode(TextTokenizer.self, from: Data(tj.utf8)) else {
                    throw StrataError("\(model): not a text model (no tokenizer in its metadata)")
                }
                guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw StrataError("--text: empty text") }
                let length = saved.info.inputShape[0]
                var words = WordTokenizer.words(text)
                if words.isEmpty { words = ["<unk>"] }
                files = try Inspector.textReport(saved, tokens: Array(words.prefix(length)), ids: tok.batch([text], length: length), outDir: out)
            } else {
                guard let fj = saved.info.extra["audio_features"], let feats = try? JSONDecoder().decode(AudioFeatures.self, from: Data(fj.utf8)) else {
                    throw StrataError("\(model): not an audio model (no audio features in its metadata)")
                }
                let x = feats.standardize(feats.image(try Audio.loadWAV(wav!)).unsqueeze(0))
                files = try Inspector.audioReport(saved, spectrogram: x, outDir: out)
            }
            if json { printJSON(["report": files[0], "files": files]) } else { print("wrote \(files[0]) and \(files.count - 1) more files") }
            return
        }
        let (c, h, w) = (saved.info.inputShape[0], saved.info.inputShape[1], saved.info.inputShape[2])
        var inputs: [(name: String, image: Image)] = []
        for path in images {
            var img = try Image.load(path)
            if let cut { img = cut(c == 3 ? img.rgb() : img.grayscale()) }   // any photo: the model's box is cut out
            guard img.width == w && img.height == h && img.channels == c else {
                throw StrataError("\(path): the image is \(img.width)x\(img.height) with \(img.channels) channel(s); the model needs \(w)x\(h) with \(c) (resize it first, e.g. with strata predict's resizing)")
            }
            inputs.append(((path as NSString).lastPathComponent, img))
        }
        let (train, test) = try dataOptions.load(for: saved.info, transform: cut)
        guard train.imageShape == saved.info.inputShape else {
            throw StrataError("\(model): the model takes \(saved.info.inputShape) inputs, \(dataOptions.data) images are \(train.imageShape)")
        }
        guard test.count >= 3 else {
            throw StrataError("\(dataOptions.data): too few images to hold some out for the probes (\(train.count + test.count) in all; give a folder with at least 2 photos of a few people)")
        }
        var options = InspectOptions()
        options.probeTrain = min(probeTrain, train.count)
        options.probeTest = min(probeTest, test.count)
        options.layers = layers.isEmpty ? nil : layers
        let result = try Inspector.report(saved, train: train, test: test, images: inputs, outDir: out, options: options)
        let seconds = Date().timeIntervalSince(started)
        if json {
            printJSON(["report": result.files[0], "seconds": (seconds * 10).rounded() / 10,
                       "probes": result.probes.map { ["depth": $0.depth, "layer": $0.layer, "type": $0.type, "features": $0.features, "accuracy": $0.accuracy] },
                       "files": result.files])
        } else {
            print("layer-by-layer linear probes (logistic regression, \(options.probeTrain) train / \(options.probeTest) test images):")
            for p in result.probes {
                print("  " + "\(p.depth)".leftPad(3) + "  " + "\(p.layer) \(p.type)".rightPad(22) + "\(p.features)".leftPad(6) + " features  " + String(format: "%.4f", p.accuracy))
            }
            print(String(format: "wrote %@ and %d more files in %.1f s", result.files[0], result.files.count - 1, seconds))
        }
    }
}
