import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// Face verification pairs in the LFW formats, and how they are scored.
///
/// - View 1 (`pairsDevTrain.txt`): a count `N`, then `N` same-person lines `name i j` and `N`
///   different-person lines `name1 i name2 j` (tab-separated, image numbers 1-based).
/// - View 2 (`pairs.txt`): `folds N` on the first line, then per fold `N` same and `N` different lines.
///
/// Images are `root/name/name_%04d.jpg`.
///
/// ```swift
/// let pairs = try FacePairs.load("pairs.txt")
/// let score = FacePairs.score(similarities: sims, same: pairs.pairs.map(\.same), folds: pairs.folds)
/// print(score.accuracy, score.auc)
/// ```
public struct FacePairs {
    public struct Pair: Equatable {
        public var name1: String, index1: Int, name2: String, index2: Int
        /// Line of the pairs file (1-based; 0 for pairs made in memory).
        public var line: Int
        public var same: Bool { name1 == name2 }

        public init(_ name1: String, _ index1: Int, _ name2: String, _ index2: Int, line: Int = 0) {
            self.name1 = name1; self.index1 = index1; self.name2 = name2; self.index2 = index2; self.line = line
        }
    }

    public var pairs: [Pair]
    /// Indices into `pairs`, one list per cross-validation fold.
    public var folds: [[Int]]

    public init(pairs: [Pair], folds: [[Int]]) {
        self.pairs = pairs
        self.folds = folds
    }

    /// The image file of person `name`'s `index`-th photo.
    public static func imagePath(root: String, name: String, index: Int) -> String {
        (root as NSString).appendingPathComponent("\(name)/\(name)_\(String(format: "%04d", index)).jpg")
    }

    public static func load(_ path: String) throws -> FacePairs {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StrataError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such pairs file")")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw StrataError("\(path): not a text file") }
        return try parse(text, file: path)
    }

    /// Parses View 1 or View 2; errors name `file` and the line.
    public static func parse(_ text: String, file: String) throws -> FacePairs {
        let lines = text.textLines().map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        var i = 0
        while i < lines.count && lines[i].isEmpty { i += 1 }
        guard i < lines.count else { throw StrataError("\(file): empty pairs file") }
        let head = lines[i].split(whereSeparator: { $0 == "\t" || $0 == " " }).map { Int($0) }
        let folds: Int, perFold: Int
        if head.count == 1, let n = head[0], n > 0 { (folds, perFold) = (1, n) }
        else if head.count == 2, let f = head[0], let n = head[1], f > 0, n > 0 { (folds, perFold) = (f, n) }
        else { throw StrataError("\(file):\(i + 1): first line must be a pair count N (View 1) or \"folds N\" (View 2), got \"\(lines[i])\"") }
        // Checked: the count is read from the file, and the messages below print the total.
        guard case let (perFoldBoth, false) = perFold.multipliedReportingOverflow(by: 2),
              case let (promised, false) = folds.multipliedReportingOverflow(by: perFoldBoth) else {
            throw StrataError("\(file):\(i + 1): first line promises more pairs than a file can hold (\"\(lines[i])\")")
        }
        i += 1
        var pairs: [Pair] = [], foldIndices: [[Int]] = []
        for _ in 0..<folds {
            var fold: [Int] = []
            for same in [true, false] {
                for _ in 0..<perFold {
                    while i < lines.count && lines[i].isEmpty { i += 1 }
                    guard i < lines.count else {
                        throw StrataError("\(file): ends after \(pairs.count) pairs; its first line promises \(promised) (\(folds) fold(s) of \(perFold) same and \(perFold) different)")
                    }
                    let f = lines[i].split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
                    let what = same ? "a same-person line name<TAB>i<TAB>j" : "a different-person line name1<TAB>i<TAB>name2<TAB>j"
                    let p: Pair?
                    if same, f.count == 3, let a = Int(f[1]), let b = Int(f[2]), a > 0, b > 0 { p = Pair(f[0], a, f[0], b, line: i + 1) }
                    else if !same, f.count == 4, let a = Int(f[1]), let b = Int(f[3]), a > 0, b > 0 { p = Pair(f[0], a, f[2], b, line: i + 1) }
                    else { p = nil }
                    guard let p else { throw StrataError("\(file):\(i + 1): malformed pair line \"\(lines[i])\" (expected \(what), numbers from 1)") }
                    fold.append(pairs.count)
                    pairs.append(p)
                    i += 1
                }
            }
            foldIndices.append(fold)
        }
        if let extra = lines[i...].firstIndex(where: { !$0.isEmpty }) {
            throw StrataError("\(file):\(extra + 1): more lines than the first line promises (\(promised) pairs)")
        }
        if folds == 1 {   // View 1: ten folds, each with a tenth of the same and of the different pairs
            let n = perFold
            foldIndices = (0..<10).map { k in
                let lo = k * n / 10, hi = (k + 1) * n / 10
                return Array(lo..<hi) + Array((n + lo)..<(n + hi))
            }
        }
        return FacePairs(pairs: pairs, folds: foldIndices)
    }

    /// The View 1 text: the count, the same pairs, then the different pairs.
    public func view1Text() -> String {
        let same = pairs.filter { $0.same }, diff = pairs.filter { !$0.same }
        precondition(same.count == diff.count, "FacePairs.view1Text: \(same.count) same and \(diff.count) different pairs")
        var out = "\(same.count)\n"
        for p in same { out += "\(p.name1)\t\(p.index1)\t\(p.index2)\n" }
        for p in diff { out += "\(p.name1)\t\(p.index1)\t\(p.name2)\t\(p.index2)\n" }
        return out
    }

    /// A seeded `fraction` of the people (rounded down), sorted: the people a developer-side
    /// check holds out of training.
    public static func heldOutPeople(_ people: [String], fraction: Double, seed: Int) -> [String] {
        let sorted = people.sorted()
        var rng = RandomGenerator(seed: seed)
        let k = Int(Double(sorted.count) * fraction)
        return rng.permutation(sorted.count).prefix(k).map { sorted[$0] }.sorted()
    }

    /// Seeded pairs among `people` (name and number of photos, numbered 1...n): `same` distinct
    /// same-person pairs (a person drawn uniformly, then two of their photos) and `different`
    /// distinct pairs of two people, one photo each.
    public static func make(people: [(name: String, photos: Int)], same: Int, different: Int, seed: Int) throws -> FacePairs {
        let multi = people.filter { $0.photos >= 2 }
        let possibleSame = multi.reduce(0) { $0 + $1.photos * ($1.photos - 1) / 2 }
        guard possibleSame >= same else { throw StrataError("only \(possibleSame) same-person pairs exist among \(people.count) people; asked for \(same)") }
        guard people.count >= 2 || different == 0 else { throw StrataError("different-person pairs need at least 2 people") }
        var rng = RandomGenerator(seed: seed)
        var seen = Set<String>(), out: [Pair] = []
        while out.count < same {
            let p = multi[rng.nextInt(multi.count)]
            var a = rng.nextInt(p.photos) + 1, b = rng.nextInt(p.photos - 1) + 1
            if b >= a { b += 1 }
            if a > b { swap(&a, &b) }
            if seen.insert("\(p.name)\t\(a)\t\(b)").inserted { out.append(Pair(p.name, a, p.name, b)) }
        }
        var tries = 0
        while out.count < same + different {
            tries += 1
            if tries > 1000 * (different + 1) { throw StrataError("could not draw \(different) distinct different-person pairs") }
            var i = rng.nextInt(people.count), j = rng.nextInt(people.count - 1)
            if j >= i { j += 1 }
            if people[i].name > people[j].name { swap(&i, &j) }
            let a = rng.nextInt(people[i].photos) + 1, b = rng.nextInt(people[j].photos) + 1
            if seen.insert("\(people[i].name)\t\(a)\t\(people[j].name)\t\(b)").inserted { out.append(Pair(people[i].name, a, people[j].name, b)) }
        }
        return try parse(FacePairs(pairs: out, folds: []).view1Text(), file: "generated pairs")
    }

    /// Verification scores from one similarity per pair (higher = more alike).
    public struct Score {
        /// Mean and standard deviation over the folds of the accuracy at the threshold that is
        /// best on the other folds.
        public var accuracy: Double, accuracyStd: Double
        /// Area under the ROC curve over all pairs.
        public var auc: Double
        /// Share of same pairs accepted at the threshold that accepts at most 1 % of the different pairs.
        public var tarAtFar1: Double
        /// The best threshold over all pairs.
        public var threshold: Float
    }

    public static func score(similarities s: [Float], same: [Bool], folds: [[Int]]) -> Score {
        precondition(s.count == same.count, "FacePairs.score: \(s.count) similarities for \(same.count) pairs")
        var accs: [Double] = []
        for k in folds.indices {
            let train = folds.indices.filter { $0 != k }.flatMap { folds[$0] }
            let t = bestThreshold(train.map { s[$0] }, train.map { same[$0] })
            let test = folds[k]
            accs.append(Double(test.filter { (s[$0] > t) == same[$0] }.count) / Double(Swift.max(test.count, 1)))
        }
        let m = accs.reduce(0, +) / Double(Swift.max(accs.count, 1))
        let sd = (accs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(Swift.max(accs.count - 1, 1))).squareRoot()
        // AUC: the chance that a random same pair scores above a random different pair (ties half).
        let pos = s.indices.filter { same[$0] }.map { s[$0] }, neg = s.indices.filter { !same[$0] }.map { s[$0] }.sorted()
        var wins = 0.0
        for p in pos {
            let below = lowerBound(neg, p), notAbove = upperBound(neg, p)
            wins += Double(below) + 0.5 * Double(notAbove - below)
        }
        let auc = wins / Double(Swift.max(pos.count * neg.count, 1))
        // TAR at FAR 1 %: accept above the similarity that at most 1 % of different pairs exceed.
        let desc = Array(neg.reversed())
        let allowed = Int(0.01 * Double(neg.count))
        let t = desc.isEmpty ? Float.infinity : desc[Swift.min(allowed, desc.count - 1)]
        let tar = Double(pos.filter { $0 > t }.count) / Double(Swift.max(pos.count, 1))
        return Score(accuracy: m, accuracyStd: sd, auc: auc, tarAtFar1: tar, threshold: bestThreshold(s, same))
    }

    /// The threshold (accept when similarity > t) with the most correct decisions; midpoints
    /// between neighbouring scores are tried.
    static func bestThreshold(_ s: [Float], _ same: [Bool]) -> Float {
        let order = s.indices.sorted { s[$0] < s[$1] }
        // Threshold below everything: all accepted, correct = number of same pairs.
        var correct = same.filter { $0 }.count, best = correct
        var bestT = (order.first.map { s[$0] } ?? 0) - 1
        for (r, i) in order.enumerated() {
            correct += same[i] ? -1 : 1       // pair i now rejected
            if r + 1 < order.count && s[order[r + 1]] == s[i] { continue }
            if correct > best {
                best = correct
                bestT = r + 1 < order.count ? (s[i] + s[order[r + 1]]) / 2 : s[i] + 1
            }
        }
        return bestT
    }

    static func lowerBound(_ a: [Float], _ v: Float) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < v { lo = m + 1 } else { hi = m } }
        return lo
    }

    static func upperBound(_ a: [Float], _ v: Float) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] <= v { lo = m + 1 } else { hi = m } }
        return lo
    }
}
