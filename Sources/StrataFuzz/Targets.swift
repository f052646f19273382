import Foundation
import Strata
import StrataFaces
import StrataONNX

/// The fuzz targets: each one hands its input to the entry point the `strata` command uses for
/// that kind of file. Those entry points read paths, so the input is written to a file first (one
/// scratch folder per process, removed at exit). A thrown error is the right answer to bad input;
/// a trap, a sanitizer report, a leak or an allocation over libFuzzer's limits is a finding.
enum FuzzTargets {
    typealias Target = (_ input: Data) throws -> Void

    static let all: [String: Target] = [
        "safetensors": safetensors, "model": model, "metadata": metadata,
        "png": image, "jpeg": photo, "pgm": image, "webp": photo, "heic": photo, "wav": wav, "idx": idx, "gzip": gzip,
        "text": text, "pairs": pairs, "cora": cora, "gallery": gallery, "onnx": onnx, "bert": bert,
    ]
    /// In the order `make fuzz` runs them.
    static let names = ["safetensors", "model", "metadata", "png", "jpeg", "pgm", "webp", "heic", "wav", "idx", "gzip",
                        "text", "pairs", "cora", "gallery", "onnx", "bert"]

    nonisolated(unsafe) static var selected: Target?

    /// Runs `target` on libFuzzer's bytes; 0 keeps the input in the corpus.
    static func run(_ target: Target, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let input = data.map { Data(bytes: $0, count: size) } ?? Data()
        do { try target(input) } catch {}
        return 0
    }

    /// What `target` made of an input, for the replay build: "ok" or the error's message.
    static func outcome(_ target: Target, _ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
        let input = data.map { Data(bytes: $0, count: size) } ?? Data()
        do { try target(input); return "ok" } catch let e as StrataError { return "error: \(e.message)" } catch { return "error: \(error)" }
    }

    // MARK: scratch files

    /// The scratch folder: in /dev/shm where there is one, so a run costs no disk writes.
    static let folder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = (base as NSString).appendingPathComponent("strata-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzTargets.folder) }
        return dir
    }()

    /// Writes `data` to the scratch file `name` (plain POSIX writes: no temporary file, no sync)
    /// and returns its path.
    static func file(_ data: Data, _ name: String = "input") throws -> String {
        let path = (folder as NSString).appendingPathComponent(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("strata-fuzz: cannot write \(path)") }   // the harness's failure, not the input's
        defer { close(fd) }
        data.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                guard n > 0 else { fatalError("strata-fuzz: cannot write \(path)") }
                done += n
            }
        }
        return path
    }

    // MARK: model files

    /// `strata predict/evaluate/inspect --model`: the safetensors container alone...
    static func safetensors(_ input: Data) throws {
        _ = try Safetensors.read(try file(input))
    }

    /// ...and a whole model file: weights, metadata, the model rebuilt from its architecture and
    /// the preprocessing it describes.
    static func model(_ input: Data) throws {
        let saved = try SavedModel.load(try file(input))
        _ = try Preprocessing(saved.info)
    }

    /// The metadata of a model file, one value a line: architecture, input_shape, class_names,
    /// normalization, history (a missing line leaves its key out). When the architecture builds,
    /// the file carries that model's own weights, so loading gets past the weights to the checks
    /// of input_shape and class names. Then the file is loaded as `strata` loads a model.
    static func metadata(_ input: Data) throws {
        let keys = ["architecture", "input_shape", "class_names", "normalization", "history"]
        let lines = String(decoding: input, as: UTF8.self).split(separator: "\n", maxSplits: keys.count - 1, omittingEmptySubsequences: false)
        var meta = ["format": "strata"]
        for (k, v) in zip(keys, lines) { meta[k] = String(v) }
        var tensors: [String: Tensor] = [:]
        if let spec = (try? JSONSerialization.jsonObject(with: Data((meta["architecture"] ?? "").utf8))) as? [String: Any] {
            // Weights are written only for small models: the harness must not spend its time
            // (or libFuzzer's memory limits) drawing or writing large ones; load still builds the rest.
            let sized = try Tensor.withoutRandomInit { try ModuleRegistry.build(spec) }
            if sized.stateDict().values.reduce(0, { $0 + $1.count }) <= 1 << 18 { tensors = try ModuleRegistry.build(spec).stateDict() }
        }
        let path = try file(try Safetensors.encode(tensors, metadata: meta))
        let saved = try SavedModel.load(path)
        _ = try Preprocessing(saved.info)
    }

    /// `OnnxModel(path:)` as `strata predict --model M.onnx` loads it, then one run on an input of
    /// the graph's declared shape (when that is small), with a small cap on every tensor.
    static func onnx(_ input: Data) throws {
        let m = try OnnxModel(path: try file(input, "model.onnx"))
        let shape = [1] + m.inputShape
        guard shape.allSatisfy({ $0 >= 1 && $0 <= 4096 }), shape.reduce(1, *) <= 1 << 16 else { return }
        m.maxElements = 1 << 20
        _ = try m.run(Tensor.zeros(shape))
    }

    // MARK: images, recordings, arrays

    /// `strata predict photo.png` on a 28x28 grey model: load, convert, resize, normalise.
    static func image(_ input: Data) throws {
        let preprocessing = Preprocessing.image(channels: 1, height: 28, width: 28, normalization: Normalization())
        _ = try preprocessing.tensor(files: [try file(input)])
    }

    /// As `image`, and as the face commands read photos: reduced by libjpeg's DCT scaling (WebP
    /// and HEIC load whole there).
    static func photo(_ input: Data) throws {
        let path = try file(input)
        let preprocessing = Preprocessing.image(channels: 3, height: 16, width: 16, normalization: Normalization())
        _ = try preprocessing.tensor(files: [path])
        _ = try Image.loadReduced(path, maxSide: 8)
    }

    /// `strata predict recording.wav` on an audio model: the WAV read, the length checked, the
    /// log-mel features made.
    static func wav(_ input: Data) throws {
        _ = try Preprocessing.audio(audioFeatures).tensor(files: [try file(input)])
    }

    /// The features of an audio model file: the defaults, with per-band statistics as fitted.
    static let audioFeatures: AudioFeatures = {
        var f = AudioFeatures()
        (f.bandMean, f.bandStd) = ([Float](repeating: -10, count: f.bands), [Float](repeating: 5, count: f.bands))
        return f
    }()

    /// MNIST-style IDX files, plain or gzip-compressed (`train --data-dir`).
    static func idx(_ input: Data) throws {
        _ = try IDXArray(path: try file(input))
    }

    /// Any file read through zlib's gzip reader.
    static func gzip(_ input: Data) throws {
        _ = try FileIO.readMaybeGzip(try file(input))
    }

    // MARK: text formats

    /// The SMS Spam Collection and the sentiment sentences, then the tokenizer the text models fit.
    static func text(_ input: Data) throws {
        let path = try file(input)
        var texts: [String] = []
        if let d = try? TextDataset.smsSpam(path) { texts += d.texts }
        if let d = try? TextDataset.sentiment([path]) { texts += d.texts }
        let tokenizer = WordTokenizer(fitting: texts, minCount: 1)
        for t in texts.prefix(4) { _ = tokenizer.encode(t, length: 16) }
    }

    /// A text encoder folder (`embed --encoder`, `train --encoder`): the input's NUL-separated
    /// parts are vocab.txt, config.json, tokenizer_config.json and a text to tokenise; then the
    /// config's sizes are checked against a weights file of 16 bytes, as `TextEncoder` does
    /// before it builds the encoder (which must be refused, whatever the config says).
    static func bert(_ input: Data) throws {
        let parts = input.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false)
        let names = ["vocab.txt", "config.json", "tokenizer_config.json"]
        for (i, name) in names.enumerated() {
            let path = (folder as NSString).appendingPathComponent(name)
            if i < parts.count { _ = try file(Data(parts[i]), name) } else { try? FileManager.default.removeItem(atPath: path) }
        }
        if let tok = try? WordPieceTokenizer(folder: folder) {
            let text = parts.count > 3 ? String(decoding: parts[3], as: UTF8.self) : "Hello, wörld! 你好"
            _ = tok.encode([text, "a second text"], maxLength: 16)
        }
        let config = try BertConfig(file: (folder as NSString).appendingPathComponent("config.json"))
        let weights = try file(Data(count: 16), "model.safetensors")
        try config.checkFits(weightsFile: weights)
        fatalError("strata-fuzz: a config of \(config.parameterCount ?? -1) weights passed the check against a 16-byte file (every config holds at least 21)")
    }

    /// LFW pairs files (`faces evaluate --pairs`).
    static func pairs(_ input: Data) throws {
        _ = try FacePairs.load(try file(input))
    }

    /// A Cora folder: the input up to its first NUL byte is cora.content, the rest cora.cites.
    static func cora(_ input: Data) throws {
        let cut = input.firstIndex(of: 0) ?? input.endIndex
        _ = try file(input[input.startIndex..<cut], "cora.content")
        _ = try file(cut < input.endIndex ? input[(cut + 1)...] : Data(), "cora.cites")
        let graph = try Cora.load(folder)
        _ = graph.normalizedAdjacency()
        _ = graph.planetoidSplit(seed: 0)
    }

    // MARK: galleries

    /// The built-in face model, loaded once: a gallery is read against it.
    static let faceModel: FaceModel = {
        do { return try FaceModel.builtIn() } catch { fatalError("strata-fuzz: \(error)") }
    }()

    /// `faces identify --gallery`: the gallery read and checked against the model, then searched.
    static func gallery(_ input: Data) throws {
        let g = try Gallery.load(try file(input), for: faceModel)
        let n = faceModel.embeddingSize
        let e = [Float](repeating: 1 / Float(n).squareRoot(), count: n)
        _ = g.nearest(e)
    }
}

/// libFuzzer's usual entry, for a build that links libFuzzer's own main.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let target = FuzzTargets.selected else { return 0 }
    return FuzzTargets.run(target, data, size)
}
