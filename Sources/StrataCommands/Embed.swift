import ArgumentParser
import Foundation
import Strata

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings from a pretrained BERT-family encoder folder, one JSON line per text.",
        discussion: """
        strata embed --encoder "$(make -s bert-model)" --text "A great film." --text "Dull."
        prints {"text": ..., "embedding": [...]} per text (mean pooling and L2 normalisation, as the
        folder's pooling config says). Without --text, each line of standard input is a text.
        """)

    @Option(help: "Folder of the encoder: vocab.txt, config.json, model.safetensors (Hugging Face names), pooling config.") var encoder: String
    @Option(help: "A text to embed (repeatable); without it, each line of standard input.") var text: [String] = []
    @Option(help: "Texts per batch.") var batchSize: Int = 64

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        var texts = text
        if texts.isEmpty { while let line = readLine() { texts.append(line) } }
        let model = try TextEncoder(folder: encoder)
        let r = try model.encode(texts, batchSize: batchSize)
        if let w = r.truncationWarning { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let d = r.embeddings.shape[1], values = r.embeddings.scalars
        for (i, t) in texts.enumerated() {
            printJSON(["text": t, "embedding": (0..<d).map { Double(values[i * d + $0]) }])
        }
    }
}
