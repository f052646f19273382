import ArgumentParser
import Foundation
import Strata
import StrataFaces
import StrataONNX

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Test accuracy and loss of a model file.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        threadOptions.apply()
        let saved = try modelOptions.load()
        let test = dataOptions.isFolder ? try dataOptions.load(for: saved.info).test : try dataOptions.load(.test)
        guard saved.info.inputShape == test.imageShape else {
            throw StrataError("\(modelOptions.model): the model takes \(saved.info.inputShape) inputs, \(dataOptions.data) images are \(test.imageShape)")
        }
        if let onnx = saved.model as? OnnxModel, test.count > 0 {
            // The graph's errors (an op it cannot run on these inputs) as one line, before the batches.
            _ = try onnx.scores(test.batch([0]).inputs, classes: saved.info.classNames.count)
        }
        let (loss, acc) = Trainer.evaluate(saved.model, test)
        let perClass = Trainer.perClassAccuracy(saved.model, test, classes: test.classNames.count)
        if json {
            printJSON(["model": modelOptions.model, "test_accuracy": acc, "test_loss": loss, "images": test.count,
                       "per_class_accuracy": Dictionary(uniqueKeysWithValues: zip(test.classNames, perClass).map { ($0, $1) })])
        } else {
            print(String(format: "%@ on %d %@ test images: accuracy %.4f, loss %.4f", modelOptions.model, test.count, dataOptions.data, acc, loss))
            print(zip(test.classNames, perClass).map { "  " + $0.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.3f", $1) }.joined(separator: "\n"))
        }
    }
}
