import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Test accuracy and loss of a model file.")

    @Option(help: "Model file (.safetensors).")
    var model: String

    @Option(help: "Architecture of a weights-only file: mlp or cnn.")
    var arch: String?

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func run() throws {
        threadOptions.apply()
        let saved = try loadModel(model, arch: arch)
        let test = try dataOptions.load(.test)
        guard saved.info.inputShape == test.imageShape else {
            throw StrataError("\(model): the model takes \(saved.info.inputShape) inputs, \(dataOptions.data) images are \(test.imageShape)")
        }
        let (loss, acc) = Trainer.evaluate(saved.model, test)
        // Per-class accuracy from one more pass (cheap next to training).
        var correct = [Int](repeating: 0, count: test.classNames.count), total = correct
        noGrad {
            saved.model.eval()
            for b in DataLoader(test, batchSize: 1000).epoch(0) {
                for (p, y) in zip(saved.model(b.inputs).argmaxIndices(), b.labels) {
                    total[y] += 1
                    if p == y { correct[y] += 1 }
                }
            }
        }
        if json {
            var per: [String: Double] = [:]
            for (i, n) in test.classNames.enumerated() { per[n] = Double(correct[i]) / Double(max(total[i], 1)) }
            printJSON(["model": model, "test_accuracy": acc, "test_loss": loss, "images": test.count, "per_class_accuracy": per])
        } else {
            print(String(format: "%@ on %d %@ test images: accuracy %.4f, loss %.4f", model, test.count, dataOptions.data, acc, loss))
            for (i, n) in test.classNames.enumerated() {
                print("  " + n.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.3f", Double(correct[i]) / Double(max(total[i], 1))))
            }
        }
    }
}
