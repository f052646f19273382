import Foundation
import StrataCore
import StrataNN

/// A citation graph with node features and classes, as in the Cora data set.
public struct Graph {
    public let features: Tensor          // [nodes, features]
    public let labels: [Int]
    public let classNames: [String]
    public let nodeIDs: [String]
    /// Undirected edges (i < j), each once.
    public let edges: [(Int, Int)]

    public var nodeCount: Int { labels.count }

    /// D^-1/2 (A + I) D^-1/2 with D the degrees of A + I (Kipf and Welling).
    public func normalizedAdjacency() -> SparseMatrix {
        var degree = [Float](repeating: 1, count: nodeCount)
        for (a, b) in edges { degree[a] += 1; degree[b] += 1 }
        let inv = degree.map { 1 / $0.squareRoot() }
        var entries: [(Int, Int, Float)] = (0..<nodeCount).map { ($0, $0, inv[$0] * inv[$0]) }
        for (a, b) in edges {
            entries.append((a, b, inv[a] * inv[b]))
            entries.append((b, a, inv[a] * inv[b]))
        }
        return SparseMatrix(rows: nodeCount, cols: nodeCount, entries: entries)
    }

    /// Per seed: 20 nodes of each class for training (the first of each class in a seeded
    /// permutation), then the next 500 nodes for validation and 1,000 for testing.
    public func planetoidSplit(seed: Int, perClass: Int = 20, validation: Int = 500, test: Int = 1000) -> (train: [Int], val: [Int], test: [Int]) {
        var rng = RandomGenerator(seed: seed)
        let perm = rng.permutation(nodeCount)
        var train: [Int] = [], taken = Set<Int>()
        for c in 0..<classNames.count {
            for n in perm where labels[n] == c {
                if train.filter({ labels[$0] == c }).count == perClass { break }
                train.append(n)
                taken.insert(n)
            }
        }
        let rest = perm.filter { !taken.contains($0) }
        return (train, Array(rest.prefix(validation)), Array(rest.dropFirst(validation).prefix(test)))
    }
}

public enum Cora {
    /// Reads `cora.content` (id, binary features, class per line) and `cora.cites` (cited, citing
    /// per line) from `dir`. Features are row-normalised; class ids follow sorted class names;
    /// every citation is an undirected edge. A malformed line or an edge naming an unknown node
    /// throws an error naming the file and line.
    public static func load(_ dir: String) throws -> Graph {
        let contentPath = (dir as NSString).appendingPathComponent("cora.content")
        let citesPath = (dir as NSString).appendingPathComponent("cora.cites")
        func read(_ p: String) throws -> [Substring] {
            guard let s = try? String(contentsOfFile: p, encoding: .utf8) else {
                throw StrataError("\(p): \(FileManager.default.fileExists(atPath: p) ? "cannot be read" : "no such file (the Cora data set needs cora.content and cora.cites)")")
            }
            return s.textLines()
        }
        var ids: [String] = [], rows: [[Float]] = [], classes: [String] = []
        var width = -1
        for (i, line) in try read(contentPath).enumerated() where !line.isEmpty {
            let f = line.split(separator: "\t")
            guard f.count >= 3 else { throw StrataError("\(contentPath):\(i + 1): expected an id, features and a class separated by tabs") }
            if width < 0 { width = f.count - 2 }
            guard f.count - 2 == width else { throw StrataError("\(contentPath):\(i + 1): \(f.count - 2) features, earlier lines have \(width)") }
            var row = [Float]()
            row.reserveCapacity(width)
            for v in f[1...width] {
                guard let x = Float(v) else { throw StrataError("\(contentPath):\(i + 1): feature '\(v)' is not a number") }
                row.append(x)
            }
            ids.append(String(f[0]))
            rows.append(row)
            classes.append(String(f[f.count - 1]))
        }
        guard !ids.isEmpty else { throw StrataError("\(contentPath): no nodes") }
        let names = Array(Set(classes)).sorted()
        let classOf = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var index: [String: Int] = [:]
        for (i, id) in ids.enumerated() {
            guard index[id] == nil else { throw StrataError("\(contentPath): node \(id) appears twice") }
            index[id] = i
        }
        var edgeSet = Set<Int>()
        var edges: [(Int, Int)] = []
        for (i, line) in try read(citesPath).enumerated() where !line.isEmpty {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard f.count == 2 else { throw StrataError("\(citesPath):\(i + 1): expected two node ids separated by a tab") }
            guard let a = index[String(f[0])] else { throw StrataError("\(citesPath):\(i + 1): edge names unknown node \(f[0])") }
            guard let b = index[String(f[1])] else { throw StrataError("\(citesPath):\(i + 1): edge names unknown node \(f[1])") }
            if a == b { continue }
            let (lo, hi) = (Swift.min(a, b), Swift.max(a, b))
            if edgeSet.insert(lo * ids.count + hi).inserted { edges.append((lo, hi)) }
        }
        var flat = [Float]()
        flat.reserveCapacity(ids.count * width)
        for r in rows {
            let s = r.reduce(0, +)
            flat += s > 0 ? r.map { $0 / s } : r
        }
        return Graph(features: Tensor(flat, shape: [ids.count, width]), labels: classes.map { classOf[$0]! }, classNames: names, nodeIDs: ids, edges: edges)
    }
}
