import Foundation
import StrataCore
import StrataNN
import StrataData

extension Inspector {
    /// The report of a graph network on its graph: how well a linear probe reads each paper's
    /// class from the word features, the hidden layer and the output (probes trained on the
    /// seeded Planetoid training nodes, scored on its test nodes), and the hidden layer's two
    /// principal components coloured by class.
    public static func graphReport(_ saved: SavedModel, graph: Graph, outDir: String, seed: Int = 0) throws -> (files: [String], probes: [ProbeResult]) {
        guard let gcn = saved.model as? GCN else { throw StrataError("not a graph model") }
        try prepareFolder(outDir)
        gcn.attach(graph)
        gcn.eval()
        let (hidden, output) = noGrad { () -> (Tensor, Tensor) in
            let h = gcn.conv1(graph.features).relu()
            return (h, gcn.conv2(h))
        }
        let (train, _, test) = graph.planetoidSplit(seed: seed)
        let classes = graph.classNames.count
        let layers: [(String, String, Tensor)] = [("input", "word features", graph.features), ("conv1", "GraphConv + ReLU", hidden), ("conv2", "GraphConv", output)]
        let probes = layers.enumerated().map { depth, layer -> ProbeResult in
            let x = layer.2
            let probe = SoftmaxRegression.fit(features: x.indexSelect(axis: 0, indices: train), labels: train.map { graph.labels[$0] }, classes: classes, seed: seed)
            let acc = probe.accuracy(features: x.indexSelect(axis: 0, indices: test), labels: test.map { graph.labels[$0] })
            return ProbeResult(depth: depth, layer: layer.0, type: layer.1, features: x.shape[1], accuracy: acc)
        }
        let pca = PCA(hidden, components: 2)
        let xy = pca.transform(hidden).scalars
        var chart = SVGChart(title: "hidden layer (conv1), first two principal components", xLabel: "PC 1", yLabel: "PC 2")
        for c in 0..<classes {
            let nodes = graph.labels.indices.filter { graph.labels[$0] == c }
            chart.add(SVGChart.Series(name: graph.classNames[c], points: nodes.map { (Double(xy[$0 * 2]), Double(xy[$0 * 2 + 1])) }, style: .scatter,
                                      color: ColorMap.categorical[c % ColorMap.categorical.count]))
        }
        let svg = (outDir as NSString).appendingPathComponent("hidden-pca.svg"), index = (outDir as NSString).appendingPathComponent("index.html")
        try FileIO.writeAtomically(Data(chart.render().utf8), to: svg)
        var page = HTMLPage(title: "Strata inspect: graph network")
        page.section("Linear probes per layer", "<p>Logistic regression on \(train.count) labelled papers, scored on \(test.count) others.</p>"
                     + HTMLPage.table(["depth", "layer", "type", "features", "probe accuracy"],
                                      probes.map { ["\($0.depth)", $0.layer, $0.type, "\($0.features)", String(format: "%.4f", $0.accuracy)] }))
        page.section("Hidden layer", "<img src=\"hidden-pca.svg\" alt=\"PCA of the hidden layer\">")
        try FileIO.writeAtomically(Data(page.render().utf8), to: index)
        return ([index, svg], probes)
    }
}
