import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Layers, output shapes and parameter counts of a model file.")

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func run() throws {
        let saved = try modelOptions.load()
        let rows = saved.model.summary(inputShape: saved.info.inputShape)
        if json {
            printJSON(["model": modelOptions.model, "layers": rows.map { ["name": $0.name, "type": $0.type, "output_shape": $0.outputShape, "parameters": $0.parameters] },
                       "total_parameters": saved.model.parameterCount])
            return
        }
        print(saved.model.summaryTable(inputShape: saved.info.inputShape))
        if let last = saved.info.history.last {
            print(String(format: "trained %d epochs; last: loss %.4f, accuracy %.4f", saved.info.history.count, last.trainLoss, last.trainAccuracy)
                  + (last.valAccuracy.map { String(format: ", %@_accuracy %.4f", saved.info.validationName ?? "val", $0) } ?? ""))
        }
    }
}
