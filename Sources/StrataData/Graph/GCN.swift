import StrataCore
import StrataNN

/// A graph convolution (Kipf and Welling): `A_hat (H W) + b`, Glorot-uniform weight `[in, out]`,
/// zero bias. The normalised adjacency is set by the model that owns the layer.
public final class GraphConv: Module {
    public let weight: Parameter, bias: Parameter
    public let inFeatures: Int, outFeatures: Int
    var adjacency: SparseMatrix?

    public init(_ inFeatures: Int, _ outFeatures: Int) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = (6 / Float(inFeatures + outFeatures)).squareRoot()
        weight = Parameter(Tensor.rand([inFeatures, outFeatures], low: -bound, high: bound))
        bias = Parameter(Tensor.zeros([outFeatures]))
    }

    public override func forward(_ h: Tensor) -> Tensor {
        guard let a = adjacency else { fatalError("GraphConv: no graph attached (call attach(_:) on the model)") }
        return a.matmul(h.matmul(weight.value)) + bias.value
    }

    public override var config: [String: Any] { ["in": inFeatures, "out": outFeatures] }
}

/// The two-layer GCN for semi-supervised node classification. Its input is a tensor of node
/// indices; it propagates over the whole attached graph and returns those nodes' class scores,
/// so the ordinary `Trainer` can fit it on the labelled nodes.
///
/// ```swift
/// let g = try Cora.load("../shared/data/cora")
/// let gcn = GCN(features: g.features.shape[1], hidden: 16, classes: 7)
/// gcn.attach(g)
/// let logits = gcn(Tensor(trainNodes.map(Float.init)))
/// ```
public final class GCN: Module, BuildableModule {
    public let conv1: GraphConv, conv2: GraphConv
    public let dropout: Dropout
    public let features: Int, hidden: Int, classes: Int
    var x: Tensor?

    public init(features: Int, hidden: Int = 16, classes: Int, dropout p: Float = 0.5) {
        self.features = features
        self.hidden = hidden
        self.classes = classes
        conv1 = GraphConv(features, hidden)
        conv2 = GraphConv(hidden, classes)
        dropout = Dropout(p)
    }

    /// Uses `graph`'s features and normalised adjacency from now on.
    public func attach(_ graph: Graph) {
        precondition(graph.features.shape[1] == features, "GCN: graph has \(graph.features.shape[1]) features, the model \(features)")
        let a = graph.normalizedAdjacency()
        conv1.adjacency = a
        conv2.adjacency = a
        x = graph.features
    }

    /// Class scores of every node.
    public func allScores() -> Tensor {
        guard let x else { fatalError("GCN: no graph attached (call attach(_:))") }
        let h = conv1(dropout(x)).relu()
        return conv2(dropout(h))
    }

    /// Without a graph attached, the layers with their parameters and per-node output widths.
    public override func summaryRows(inputShape: [Int]) -> [LayerSummary] {
        if x != nil { return tracedSummary(inputShape: inputShape) }
        return [("conv1", conv1, hidden), ("conv2", conv2, classes)].map { name, layer, width in
            LayerSummary(name: name, type: layer.typeName, outputShape: [-1, width], parameters: layer.parameterCount)
        }
    }

    public override func forward(_ nodes: Tensor) -> Tensor {
        allScores().indexSelect(axis: 0, indices: nodes.scalars.map { Int($0) })
    }

    public override var config: [String: Any] { ["features": features, "hidden": hidden, "classes": classes, "dropout": Double(dropout.p)] }

    /// Rebuilds the layer from its architecture entry (its `config`); found by `ModuleRegistry` by name.
    public static func build(_ s: [String: Any]) throws -> Module {
        let (f, h, c) = (try ModuleRegistry.int(s, "features"), try ModuleRegistry.int(s, "hidden", 16), try ModuleRegistry.int(s, "classes"))
        try ModuleRegistry.weights(s, [f, h])
        try ModuleRegistry.weights(s, [h, c])
        return GCN(features: f, hidden: h, classes: c, dropout: try ModuleRegistry.probability(s, "dropout", 0.5))
    }
}

/// Node indices as a data set: a batch's inputs are the indices, its labels the nodes' classes.
public struct NodeSet: BatchSource {
    public let nodes: [Int]
    public let labels: [Int]

    public init(_ nodes: [Int], graph: Graph) {
        self.nodes = nodes
        labels = nodes.map { graph.labels[$0] }
    }

    public var count: Int { nodes.count }

    public func batch(_ indices: [Int]) -> Batch {
        Batch(inputs: Tensor(indices.map { Float(nodes[$0]) }), labels: indices.map { labels[$0] }, indices: indices)
    }
}

extension GCN: ShapeInferable {
    /// Nodes of `features` word features each, `[N, features]`, to class scores `[N, classes]`
    /// (a model file's `input_shape` is one node's features).
    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[1] == features else { throw StrataError("GCN takes nodes of \(features) features, gets input \(shape)") }
        return [shape[0], classes]
    }
}
