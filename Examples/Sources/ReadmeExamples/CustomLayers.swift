// README.md, "Custom layers in model files": a layer of this package saved and loaded by its
// type name (`ReadmeExamples.Scale`), with no registration.
import Strata

final class Scale: Module, ConfigurableModule {
    struct Configuration: Codable { var factor: Float }
    let configuration: Configuration
    init(configuration: Configuration) { self.configuration = configuration }
    override func forward(_ x: Tensor) -> Tensor { x * configuration.factor }
}

func customLayersInModelFiles() throws {
    let net = Sequential(Linear(4, 2), Scale(configuration: .init(factor: 2)))
    let info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: ["a", "b"], inputShape: [4])
    try SavedModel(model: net, info: info).save(to: "scaled.safetensors")
    let back = try SavedModel.load("scaled.safetensors")   // finds Scale by its type name
    print(back.model.summaryTable(inputShape: [4]))
}
