import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// Several face networks stored as one model: each sees its own crop of the photo (a face box,
/// a wider one with hair, grey or colour), and their unit embeddings are joined. Diverse views of
/// a face make errors that partly cancel, which helps most when training data is scarce.
///
/// `FaceModel` drives it (each member's crop and input shape are in the model file's metadata);
/// `forward` is defined for members that share an input shape.
///
/// ```swift
/// let e = FaceEnsemble([netA, netB])        // state names: members.0.*, members.1.*
/// ```
public final class FaceEnsemble: Module, BuildableModule {
    public let members: [Module]

    public init(_ members: [any FaceEmbeddingNetwork]) {
        precondition(!members.isEmpty, "FaceEnsemble: needs at least one network")
        self.members = members
        super.init()
    }

    public var nets: [any FaceEmbeddingNetwork] { members.map { $0 as! any FaceEmbeddingNetwork } }

    /// Joined unit embeddings of one batch (all members must take its shape).
    public override func forward(_ x: Tensor) -> Tensor {
        FaceEnsemble.join(nets.map { $0.embedding(x) })
    }

    /// Unit embeddings `[N, D_i]` side by side, scaled by 1/sqrt(count) so each row stays unit length.
    public static func join(_ parts: [Tensor]) -> Tensor {
        parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 1) * (1 / Float(parts.count).squareRoot())
    }

    /// Each network on its own input, its rows named `members.K.*`.
    public override func summaryRows(inputShape: [Int]) -> [LayerSummary] {
        nets.enumerated().flatMap { k, net in
            net.summary(inputShape: net.inputShape).map {
                LayerSummary(name: "members.\(k).\($0.name)", type: $0.type, outputShape: $0.outputShape, parameters: $0.parameters)
            }
        }
    }

    public override var config: [String: Any] { ["members": members.map { ModuleRegistry.spec(of: $0) }] }

    /// Rebuilds the layer from its architecture entry (its `config`); found by `ModuleRegistry` by name.
    public static func build(_ s: [String: Any]) throws -> Module {
        guard let specs = s["members"] as? [[String: Any]], !specs.isEmpty else {
            throw StrataError("architecture: FaceEnsemble needs a non-empty \"members\" list")
        }
        let nets = try specs.map { spec -> any FaceEmbeddingNetwork in
            guard let n = try ModuleRegistry.build(spec) as? any FaceEmbeddingNetwork else { throw StrataError("architecture: FaceEnsemble members must be face networks") }
            return n
        }
        return FaceEnsemble(nets)
    }
}
