import Foundation
import StrataCore
import StrataNN

/// TF-IDF features and softmax regression as one model over token ids `[N, length]`, so the
/// classical text baseline is a model file like the others (predict, summary, evaluate).
///
/// ```swift
/// let tfidf = TfIdf(fitting: ids, vocabulary: tok.size)
/// let reg = SoftmaxRegression(features: tfidf.transform(ids), labels: labels, classes: 2)
/// let model = TfIdfClassifier(tfidf, reg)          // model(ids) -> [N, 2] logits
/// ```
public final class TfIdfClassifier: Module, BuildableModule {
    /// The idf weight of each token id (a buffer, not trained).
    public let idf: Parameter
    public let fc: Linear

    public init(vocabulary: Int, classes: Int) {
        idf = Parameter(Tensor.zeros([vocabulary]), trainable: false)
        fc = Linear(vocabulary, classes)
        super.init()
    }

    /// The fitted TF-IDF weights and regression.
    public convenience init(_ tfidf: TfIdf, _ regression: SoftmaxRegression) {
        self.init(vocabulary: tfidf.idf.count, classes: regression.bias.shape[0])
        idf.assign(Tensor(tfidf.idf, shape: [tfidf.idf.count]))
        fc.weight.assign(regression.weight.value)
        fc.bias!.assign(regression.bias.value)
    }

    public override func forward(_ ids: Tensor) -> Tensor {
        fc(TfIdf(idf: idf.value.scalars).transform(ids))
    }

    public override var config: [String: Any] { ["vocabulary": idf.shape[0], "classes": fc.weight.shape[0]] }

    public static func build(_ s: [String: Any]) throws -> Module {
        let (v, c) = (try ModuleRegistry.int(s, "vocabulary"), try ModuleRegistry.int(s, "classes"))
        try ModuleRegistry.weights(s, [v, c])
        return TfIdfClassifier(vocabulary: v, classes: c)
    }

    /// One token per position, as the other text models take them.
    public override func summaryRows(inputShape: [Int]) -> [LayerSummary] {
        [LayerSummary(name: "idf", type: "TfIdf", outputShape: [1, idf.shape[0]], parameters: 0),
         LayerSummary(name: "fc", type: "Linear", outputShape: [1, fc.weight.shape[0]], parameters: fc.parameterCount)]
    }
}

extension TfIdf {
    /// TF-IDF with given idf weights (as stored in a model file).
    public init(idf: [Float]) { self.idf = idf }
}

extension TfIdfClassifier: ShapeInferable {
    /// Token ids `[N, T]` to class scores `[N, classes]`.
    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 2 else { throw StrataError("TfIdfClassifier takes token ids [N, T], gets input \(shape)") }
        return [shape[0], fc.outFeatures]
    }
}
