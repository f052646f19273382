import Foundation
import StrataCore
import StrataNN

/// Labelled texts, read from the SMS Spam Collection or the sentiment-labelled sentences.
public struct TextDataset {
    public var texts: [String]
    public var labels: [Int]
    public var classNames: [String]

    /// `label<TAB>text` lines (the SMS Spam Collection): ham = 0, spam = 1.
    public static func smsSpam(_ path: String) throws -> TextDataset {
        var texts: [String] = [], labels: [Int] = []
        for (i, line) in try lines(path).enumerated() where !line.isEmpty {
            guard let tab = line.firstIndex(of: "\t") else { throw StrataError("\(path):\(i + 1): malformed line (expected label<TAB>text)") }
            let label = line[..<tab]
            guard label == "ham" || label == "spam" else { throw StrataError("\(path):\(i + 1): label '\(label)' is neither ham nor spam") }
            texts.append(String(line[line.index(after: tab)...]))
            labels.append(label == "spam" ? 1 : 0)
        }
        guard !texts.isEmpty else { throw StrataError("\(path): no messages") }
        return TextDataset(texts: texts, labels: labels, classNames: ["ham", "spam"])
    }

    /// `text<TAB>0|1` lines from each file in turn (amazon, imdb, yelp): 0 = negative, 1 = positive.
    public static func sentiment(_ paths: [String]) throws -> TextDataset {
        var texts: [String] = [], labels: [Int] = []
        for path in paths {
            for (i, line) in try lines(path).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let tab = line.lastIndex(of: "\t") else { throw StrataError("\(path):\(i + 1): malformed line (expected text<TAB>label)") }
                let label = line[line.index(after: tab)...].trimmingCharacters(in: .whitespacesAndNewlines)
                guard let y = Int(label), y == 0 || y == 1 else { throw StrataError("\(path):\(i + 1): label '\(label)' is not 0 or 1") }
                texts.append(String(line[..<tab]))
                labels.append(y)
            }
        }
        guard !texts.isEmpty else { throw StrataError("\(paths.joined(separator: ", ")): no sentences") }
        return TextDataset(texts: texts, labels: labels, classNames: ["negative", "positive"])
    }

    static func lines(_ path: String) throws -> [Substring] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StrataError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")")
        }
        return String(decoding: data, as: UTF8.self).textLines()
    }

    /// Stratified split: per class (ascending), a seeded shuffle; the first round(fraction * n)
    /// go to test. Both index lists ascending.
    public func stratifiedSplit(testFraction: Double = 0.2, seed: Int) -> (train: [Int], test: [Int]) {
        var rng = RandomGenerator(seed: seed)
        var test: [Int] = []
        for c in 0..<classNames.count {
            let idx = labels.indices.filter { labels[$0] == c }
            let perm = rng.permutation(idx.count)
            test += perm.prefix(Int((testFraction * Double(idx.count)).rounded())).map { idx[$0] }
        }
        let t = Set(test)
        return (labels.indices.filter { !t.contains($0) }, test.sorted())
    }
}
