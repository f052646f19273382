import ArgumentParser
import Foundation
import Strata
import StrataFaces

extension FaceEvaluation.FeatureKind: ExpressibleByArgument {}
extension FaceEvaluation.ClassifierKind: ExpressibleByArgument {}

struct Classic: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The classical workflow on a folder of faces: hand-made features and a separate classifier, over seeded splits.")

    @Option(help: "Folder with one sub-folder of images per person.")
    var data: String

    @Option(help: "raw, eigenfaces, fisherfaces, lbp or hog.")
    var features: FaceEvaluation.FeatureKind = .lbp

    @Option(help: "euclidean, cosine or chi2 (1-nearest neighbour), or logreg.")
    var classifier: FaceEvaluation.ClassifierKind = .chi2

    @Option(help: "Eigenfaces: components.")
    var components: Int = 50

    @Option(help: "Training images per person; the rest are test images.")
    var trainPerPerson: Int = 5

    @Option(help: "Seeds (splits) to average over.")
    var seeds: Int = 10

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        if trainPerPerson < 1 { throw ValidationError("--train-per-person must be at least 1, got \(trainPerPerson)") }
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        if components < 1 { throw ValidationError("--components must be at least 1, got \(components)") }
    }

    func run() throws {
        let m = try FaceEvaluation.method(features: features, classifier: classifier, components: components)
        let full = try ImageFolder.load(data, channels: 1)
        let res: [(String, [Double])]
        do {
            res = try FaceEvaluation.closedSet(full: full, small: full, trainPerPerson: trainPerPerson, seeds: Array(0..<seeds), deep: [],
                                               classicalMethods: [m])
        } catch let e as StrataError { throw StrataError("\(data): \(e.message)") }
        let (mean, std) = meanStd(res[0].1)
        if json { printJSON(["method": m.name, "mean": mean, "std": std, "runs": res[0].1]) } else {
            print(String(format: "%@: %.2f %% ± %.2f over %d splits (%d training images per person)", m.name, 100 * mean, 100 * std, seeds, trainPerPerson))
        }
    }
}
