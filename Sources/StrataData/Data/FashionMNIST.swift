import Foundation
import StrataCore
import StrataNN

/// MNIST-format datasets from IDX files: Fashion-MNIST (Debian's `dataset-fashion-mnist`
/// installs it to /usr/share/datasets/fashion-mnist) and MNIST (from a folder you give).
public enum FashionMNIST {
    public enum Split: String { case train, test }

    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Loads a split from `directory` (default: Debian's location). Files may be gzip-compressed
    /// (`train-images-idx3-ubyte.gz`) or not.
    public static func load(_ split: Split, directory: String? = nil, classNames: [String] = ModelZoo.fashionClassNames,
                            name: String = "Fashion-MNIST") throws -> LabeledImages {
        let dir = directory ?? defaultDirectory
        let prefix = split == .train ? "train" : "t10k"
        func find(_ base: String) throws -> String {
            for cand in [base + ".gz", base] {
                let p = (dir as NSString).appendingPathComponent(cand)
                if FileManager.default.fileExists(atPath: p) { return p }
            }
            let hint = directory == nil
                ? "Debian's package dataset-fashion-mnist installs it there; or give the folder that holds it"
                : "the folder must hold \(prefix)-images-idx3-ubyte[.gz] and \(prefix)-labels-idx1-ubyte[.gz]"
            throw StrataError("\(name) not found: \((dir as NSString).appendingPathComponent(base))[.gz] does not exist; \(hint)")
        }
        let imagesPath = try find("\(prefix)-images-idx3-ubyte"), labelsPath = try find("\(prefix)-labels-idx1-ubyte")
        let images = try IDXArray(path: imagesPath), labels = try IDXArray(path: labelsPath)
        guard images.shape.count == 3 else { throw StrataError("\(imagesPath): expected [count, rows, cols] images, found shape \(images.shape)") }
        guard labels.shape.count == 1 else { throw StrataError("\(labelsPath): expected a 1-D label array, found shape \(labels.shape)") }
        guard images.shape[0] == labels.shape[0] else {
            throw StrataError("\(imagesPath) holds \(images.shape[0]) images but \(labelsPath) holds \(labels.shape[0]) labels")
        }
        let lab = labels.bytes.map { Int($0) }
        if let bad = lab.first(where: { $0 >= classNames.count }) {
            throw StrataError("\(labelsPath): label \(bad) is out of range for \(classNames.count) classes")
        }
        return LabeledImages(pixels: images.bytes, labels: lab, imageShape: [1, images.shape[1], images.shape[2]], classNames: classNames)
    }

    /// MNIST digits from a folder holding the four IDX files.
    public static func loadMNIST(_ split: Split, directory: String) throws -> LabeledImages {
        try load(split, directory: directory, classNames: (0..<10).map(String.init), name: "MNIST")
    }
}
