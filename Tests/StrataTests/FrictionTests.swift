import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN

/// A custom layer with a Codable configuration: `x * scale + offset`, where `scale` is a weight
/// and `offset` exists only in the configuration, so a reloaded model predicts right only when
/// both the weights and the configuration came back. Top level and internal, so
/// `ModuleRegistry` finds it by its name `StrataTests.FrictionScaleShift` in another process.
final class FrictionScaleShift: Module, ConfigurableModule {
    struct Configuration: Codable {
        var features: Int
        var offset: Float
    }
    let configuration: Configuration
    let scale: Parameter

    init(configuration: Configuration) {
        self.configuration = configuration
        scale = Parameter(Tensor.ones([configuration.features]))
    }

    override func forward(_ x: Tensor) -> Tensor { x * scale.value + configuration.offset }
}

/// A custom layer that model files cannot rebuild (neither buildable nor registered).
final class FrictionUnbuildable: Module {
    override func forward(_ x: Tensor) -> Tensor { x * 2 }
}

/// A custom layer that owns a parameter besides a child module.
final class FrictionGatedLinear: Module {
    let gain = Parameter(Tensor([1, 2, 3]))
    let fc = Linear(4, 3)
    override func forward(_ x: Tensor) -> Tensor { fc(x) * gain.value }
}

/// A model whose root owns a parameter besides its child.
final class FrictionBiasedModel: Module {
    let shift = Parameter(Tensor.zeros([2]))
    let body = Linear(3, 2)
    override func forward(_ x: Tensor) -> Tensor { body(x) + shift.value }
}

/// Small frictions met when using the library as one would use PyTorch.
final class FrictionTests: XCTestCase {
    // MARK: child processes

    /// Runs this test binary filtered to `testChildProcess` with `case` and `env`; returns its
    /// exit status and its output (stdout and stderr).
    func runChild(_ name: String, env extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let r = try runTestChild("StrataTests.FrictionTests/testChildProcess", env: extra.merging(["STRATA_FRICTION_CASE": name]) { $1 })
        return (r.status, r.out + r.err)
    }

    /// The work of a child process; does nothing in an ordinary run.
    func testChildProcess() throws {
        let env = ProcessInfo.processInfo.environment
        switch env["STRATA_FRICTION_CASE"] {
        case "load-and-predict":
            let path = try XCTUnwrap(env["STRATA_FRICTION_MODEL"])
            let saved = try SavedModel.load(path)
            saved.model.eval()
            let y = noGrad { saved.model(Tensor([[1, 1], [2, -1]])) }
            print("FRICTION_TYPES " + saved.model.namedModules().map { $0.1.typeName }.joined(separator: ","))
            print("FRICTION_PREDICTION " + y.scalars.map { String($0) }.joined(separator: ","))
        case "in-place-outside-noGrad":
            var w = Tensor([1, 2]); w.requiresGrad = true
            w -= 0.1 * Tensor([1, 1])
            print("STRATA_FRICTION survived")
        case "in-place-changes-shape":
            var w = Tensor([1, 2]); w.requiresGrad = true
            noGrad { w += Tensor.zeros([3, 2]) }
            print("STRATA_FRICTION survived")
        default:
            return
        }
    }

    // MARK: 1. in-place updates of a leaf

    /// PyTorch's manual loop, `with torch.no_grad(): w -= lr * w.grad`, fitting y = 2x + 1 on
    /// x = 1, 2, 3 from w = b = 0 with the mean squared error and lr 0.1. By hand:
    /// step 1: loss 83/3, dL/dw = -68/3, dL/db = -10, so w = 6.8/3, b = 1;
    /// step 2: residuals 4/15, 8/15, 12/15, loss 224/675, dL/dw = 112/45, dL/db = 16/15,
    ///         so w = 6.8/3 - 11.2/45 = 90.8/45, b = 1 - 1.6/15 = 13.4/15.
    func testManualUpdateInNoGradKeepsTheLeafAndFitsALine() {
        let x = Tensor([[1], [2], [3]]), y = Tensor([[3], [5], [7]])
        var w = Tensor([[0]]), b = Tensor([0])
        w.requiresGrad = true
        b.requiresGrad = true
        let lr: Float = 0.1
        var losses: [Float] = []
        for step in 0..<2 {
            guard w.requiresGrad, b.requiresGrad else {
                XCTFail("step \(step): the update turned the leaves into constants (w.requiresGrad \(w.requiresGrad), b.requiresGrad \(b.requiresGrad))")
                return
            }
            let loss = (x.matmul(w) + b - y).pow(2).mean()
            losses.append(loss.item)
            w.grad = nil
            b.grad = nil
            loss.backward()
            noGrad {
                w -= lr * w.grad!
                b -= lr * b.grad!
            }
            XCTAssertTrue(w.requiresGrad, "step \(step)")
            XCTAssertTrue(b.requiresGrad, "step \(step)")
            if step == 0 {
                // The gradient stays on the leaf after the update, as in PyTorch.
                XCTAssertEqual(w.grad?.item ?? .nan, -68.0 / 3, accuracy: 1e-4)
                XCTAssertEqual(b.grad?.item ?? .nan, -10, accuracy: 1e-4)
                XCTAssertEqual(w.item, 6.8 / 3, accuracy: 1e-5)
                XCTAssertEqual(b.item, 1, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(w.shape, [1, 1])
        XCTAssertEqual(losses[0], 83.0 / 3, accuracy: 1e-4)
        XCTAssertEqual(losses[1], 224.0 / 675, accuracy: 1e-5)
        XCTAssertEqual(w.item, 90.8 / 45, accuracy: 1e-5)
        XCTAssertEqual(b.item, 13.4 / 15, accuracy: 1e-5)
        // A third forward and backward still reaches the leaves.
        let loss = (x.matmul(w) + b - y).pow(2).mean()
        XCTAssertLessThan(loss.item, losses[1])
        w.grad = nil
        loss.backward()
        XCTAssertNotNil(w.grad)
    }

    /// Every compound assignment, tensor and scalar forms, on a leaf and on a module's parameter.
    func testEveryCompoundAssignmentKeepsALeafALeaf() {
        var w = Tensor([1, 2])
        w.requiresGrad = true
        noGrad {
            w += Tensor([1, 1])     // [2, 3]
            w *= 2                  // [4, 6]
            w /= Tensor([4, 2])     // [1, 3]
            w -= 0.5                // [0.5, 2.5]
            w += 1                  // [1.5, 3.5]
            w -= Tensor([0.5])      // [1, 3]  (broadcast to the leaf's shape)
            w *= Tensor([3, 1])     // [3, 3]
            w /= 3                  // [1, 1]
        }
        XCTAssertEqual(w.scalars, [1, 1])
        XCTAssertTrue(w.requiresGrad)
        if w.requiresGrad {   // (backward on a constant would stop the test process)
            (w * w * Tensor([1, 2])).sum().backward()
            XCTAssertEqual(w.grad?.scalars ?? [], [2, 4])
        }

        // A module's parameter, updated by hand: still trainable and found by backward.
        let layer = Linear(2, 1)
        layer.weight.assign(Tensor([[1, 1]]))
        layer.bias!.assign(Tensor([0]))
        let out = layer(Tensor([[1, 2]])).sum()   // 3; d/dweight = [1, 2], d/dbias = 1
        out.backward()
        for p in layer.parameters() { noGrad { p.value -= 0.5 * p.grad! } }
        XCTAssertEqual(layer.weight.value.scalars, [0.5, 0])
        XCTAssertEqual(layer.bias!.value.scalars, [-0.5])
        XCTAssertEqual(layer.parameters().map { $0.value.requiresGrad }, [true, true])
        if layer.parameters().allSatisfy({ $0.value.requiresGrad }) {
            layer.zeroGrad()
            layer(Tensor([[1, 2]])).sum().backward()
            XCTAssertEqual(layer.weight.grad?.scalars ?? [], [1, 2])
            XCTAssertEqual(layer.bias!.grad?.scalars ?? [], [1])
        }

        // Tensors that are not leaves keep the ordinary meaning a = a op b, recorded.
        var x = Tensor([1, 2])
        x.requiresGrad = true
        var h = x * 2
        h += x                       // 3x
        h *= 2                       // 6x
        h.sum().backward()
        XCTAssertEqual(x.grad?.scalars ?? [], [6, 6])
        var c = Tensor([1, 2])       // a constant stays a constant
        noGrad { c -= 1 }
        c += Tensor([1, 1])
        XCTAssertEqual(c.scalars, [1, 2])
        XCTAssertFalse(c.requiresGrad)
    }

    /// Outside noGrad, an in-place update of a leaf that requires grad stops, as PyTorch raises,
    /// with a message that says to wrap it in noGrad; so does one that would change its shape.
    func testInPlaceUpdateOfALeafOutsideNoGradStopsWithAMessage() throws {
        let cases: [(String, [String])] = [
            ("in-place-outside-noGrad", ["-=", "leaf", "in-place", "noGrad {", "w -= lr * w.grad!"]),
            ("in-place-changes-shape", ["+=", "cannot change the shape", "[2]", "[3, 2]"]),
        ]
        for (name, words) in cases {
            let (status, text) = try runChild(name)
            XCTAssertNotEqual(status, 0, "\(name): the child did not stop:\n\(text.suffix(600))")
            XCTAssertFalse(text.contains("STRATA_FRICTION survived"), "\(name): went on instead of stopping")
            for w in words {
                XCTAssert(text.contains(w), "\(name): message lacks '\(w)':\n\(text.suffix(600))")
            }
        }
    }

    // MARK: 2. Trainer.fit restores the mode

    func fourPoints() -> TensorDataset {
        TensorDataset(Tensor([[1, 0], [0, 1], [2, 0], [0, 2]]), labels: [0, 1, 0, 1])
    }

    func fitOptions() -> FitOptions {
        var o = FitOptions(epochs: 2, batchSize: 2)
        o.progress = .none
        return o
    }

    func testFitRestoresTheModeTheModelWasIn() throws {
        func make() -> (Sequential, Trainer) {
            RandomGenerator.manualSeed(0)
            let m = Sequential(Linear(2, 4), BatchNorm1d(4), ReLU(), Dropout(0.5), Linear(4, 2))
            let t = Trainer(model: m, optimizer: SGD(m.parameters(), lr: 0.1),
                            info: ModelInfo(architecture: ModuleRegistry.spec(of: m), classNames: ["a", "b"], inputShape: [2]))
            return (m, t)
        }
        func modes(_ m: Module) -> [Bool] { m.namedModules().map { $0.1.isTraining } }

        // Training mode before (as built): training mode after.
        let (a, ta) = make()
        try ta.fit(fourPoints(), validation: fourPoints(), options: fitOptions())
        XCTAssertEqual(modes(a), [Bool](repeating: true, count: 6))

        // Evaluation mode before: evaluation mode after.
        let (b, tb) = make()
        b.eval()
        try tb.fit(fourPoints(), validation: fourPoints(), options: fitOptions())
        XCTAssertEqual(modes(b), [Bool](repeating: false, count: 6))

        // Mixed (a frozen BatchNorm in a training model): each module gets its own mode back.
        let (c, tc) = make()
        c.layers[1].eval()
        try tc.fit(fourPoints(), options: fitOptions())
        XCTAssertEqual(modes(c), [true, true, false, true, true, true])

        // Also when fit throws.
        let (d, td) = make()
        d.eval()
        td.loss = { out, labels in crossEntropy(out, labels) * Float.nan }
        XCTAssertThrowsError(try td.fit(fourPoints(), options: fitOptions()))
        XCTAssertEqual(modes(d), [Bool](repeating: false, count: 6))
    }

    // MARK: 3. summary rows of modules with parameters of their own

    func testSummaryRowsIncludeModulesWithTheirOwnParametersAndAddUp() {
        // Linear(5, 4): 24; the custom layer's Linear(4, 3): 15; its own gain: 3.
        let m = Sequential(Linear(5, 4), FrictionGatedLinear())
        let rows = m.summary(inputShape: [5])
        XCTAssertEqual(rows.map { $0.name }, ["0", "1.fc", "1"])
        XCTAssertEqual(rows.map { $0.type }, ["Linear", "Linear", "FrictionGatedLinear"])
        XCTAssertEqual(rows.map { $0.parameters }, [24, 15, 3])
        XCTAssertEqual(rows.map { $0.outputShape }, [[1, 4], [1, 3], [1, 3]])
        XCTAssertEqual(m.parameterCount, 42)
        XCTAssertEqual(rows.reduce(0) { $0 + $1.parameters }, 42)
        XCTAssert(m.summaryTable(inputShape: [5]).contains("1 (FrictionGatedLinear)"))

        // The model itself owning a parameter: its row is "(model)".
        let root = FrictionBiasedModel()
        let rootRows = root.summary(inputShape: [3])
        XCTAssertEqual(rootRows.map { $0.name }, ["body", "(model)"])
        XCTAssertEqual(rootRows.map { $0.parameters }, [8, 2])

        // A module with parameters that its parent never calls as a module: MultiHeadAttention,
        // used through attend(_:keyMask:). dim 8: in_proj 3*8*8 + 3*8 = 216 of its own.
        let layer = TransformerEncoderLayer(dim: 8, heads: 2, feedForward: 16)
        let tRows = layer.summary(inputShape: [5, 8])
        let attn = tRows.firstIndex { $0.name == "self_attn" }
        XCTAssertNotNil(attn)
        if let attn {
            XCTAssertEqual(tRows[attn].type, "MultiHeadAttention")
            XCTAssertEqual(tRows[attn].parameters, 216)
            XCTAssertEqual(tRows[attn].outputShape, [])
            XCTAssertEqual(tRows[attn - 1].name, "self_attn.out_proj")
        }
        XCTAssertEqual(tRows.reduce(0) { $0 + $1.parameters }, layer.parameterCount)
        XCTAssertEqual(layer.parameterCount, 216 + 72 + 144 + 136 + 16 + 16)
    }

    // MARK: 4. custom layers in model files

    /// Linear(2, 2) with weight [[1, 2], [3, 4]], bias [0.5, -0.5], then the custom layer with
    /// scale [2, -1] and offset 10. Input [1, 1]: [3.5, 6.5] -> [7, -6.5] -> [17, 3.5];
    /// input [2, -1]: [0.5, 1.5] -> [1, -1.5] -> [11, 8.5].
    func testCustomConfigurableLayerSavesAndLoadsInAnotherProcess() throws {
        let custom = FrictionScaleShift(configuration: .init(features: 2, offset: 10))
        custom.scale.assign(Tensor([2, -1]))
        let fc = Linear(2, 2)
        fc.weight.assign(Tensor([[1, 2], [3, 4]]))
        fc.bias!.assign(Tensor([0.5, -0.5]))
        let model = Sequential(fc, custom)
        let expected: [Float] = [17, 3.5, 11, 8.5]
        XCTAssertEqual(noGrad { model(Tensor([[1, 1], [2, -1]])) }.scalars, expected)

        let path = testTemp("friction-custom-layer.safetensors")
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: model), classNames: ["a", "b"], inputShape: [2])
        XCTAssertEqual(info.architecture["type"] as? String, "Sequential")
        try SavedModel(model: model, info: info).save(to: path)

        let (status, text) = try runChild("load-and-predict", env: ["STRATA_FRICTION_MODEL": path])
        XCTAssertEqual(status, 0, text.suffix(1500).description)
        let lines = text.split(separator: "\n")
        let types = lines.first { $0.hasPrefix("FRICTION_TYPES ") }.map { $0.dropFirst("FRICTION_TYPES ".count) }
        XCTAssertEqual(types.map(String.init), "Sequential,Linear,FrictionScaleShift")
        let prediction = lines.first { $0.hasPrefix("FRICTION_PREDICTION ") }
            .map { $0.dropFirst("FRICTION_PREDICTION ".count).split(separator: ",").compactMap { Float(String($0)) } }
        XCTAssertEqual(prediction, expected, text.suffix(1500).description)
    }

    func testSavingALayerThatCannotBeRebuiltThrowsAndSaysHowToFixIt() throws {
        let model = Sequential(Linear(2, 2), FrictionUnbuildable())
        let path = testTemp("friction-unbuildable.safetensors")
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: model), classNames: ["a", "b"], inputShape: [2])
        XCTAssertThrowsError(try SavedModel(model: model, info: info).save(to: path)) { error in
            guard let e = error as? StrataError else { return XCTFail("not a StrataError: \(error)") }
            for w in ["FrictionUnbuildable", "cannot be saved", "ConfigurableModule", "BuildableModule", "ModuleRegistry.register"] {
                XCTAssert(e.message.contains(w), "message lacks '\(w)': \(e.message)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "a file was written")
    }
}
