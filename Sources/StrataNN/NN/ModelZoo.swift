import StrataCore

/// Named architectures (what `--arch` accepts), each with the description its model files carry.
public enum ModelZoo {
    public struct Entry {
        public let name: String
        public let build: () -> Module
        /// The description a model file of this architecture carries.
        public let info: (Module) -> ModelInfo
    }

    public static let fashionClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// 784 -> 256 ReLU -> 128 ReLU -> 10, as `../shared/bench/reference/train_fashion.py`.
    public static func fashionMLP() -> Sequential {
        Sequential(Flatten(), Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    }

    /// Conv 1->32 3x3 pad 1, ReLU, MaxPool 2, Conv 32->64 3x3 pad 1, ReLU, MaxPool 2, Flatten,
    /// Linear 3136->128, ReLU, Linear 128->10, as the reference script.
    public static func fashionCNN() -> Sequential {
        Sequential(Conv2D(1, 32, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2),
                   Conv2D(32, 64, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2),
                   Flatten(), Linear(3136, 128), ReLU(), Linear(128, 10))
    }

    /// `fashionCNN` with a BatchNorm after each convolution (Conv, BatchNorm, ReLU, MaxPool, twice):
    /// the model that data-parallel training's BatchNorm handling is checked on.
    public static func fashionCNNBatchNorm() -> Sequential {
        Sequential(Conv2D(1, 32, kernelSize: 3, padding: 1), BatchNorm2d(32), ReLU(), MaxPool2D(2),
                   Conv2D(32, 64, kernelSize: 3, padding: 1), BatchNorm2d(64), ReLU(), MaxPool2D(2),
                   Flatten(), Linear(3136, 128), ReLU(), Linear(128, 10))
    }

    /// A convolutional classifier for images of any size: three blocks of 3x3 Conv, BatchNorm,
    /// ReLU and 2x2 max pooling (32, 64, 128 channels), global average pooling, dropout 0.3 and a
    /// Linear layer. The classifier `strata train` builds for an image folder.
    public static func folderCNN(channels: Int, classes: Int) -> Sequential {
        Sequential(Conv2D(channels, 32, kernelSize: 3, padding: 1), BatchNorm2d(32), ReLU(), MaxPool2D(2),
                   Conv2D(32, 64, kernelSize: 3, padding: 1), BatchNorm2d(64), ReLU(), MaxPool2D(2),
                   Conv2D(64, 128, kernelSize: 3, padding: 1), BatchNorm2d(128), ReLU(), MaxPool2D(2),
                   GlobalAvgPool(), Dropout(0.3), Linear(128, classes))
    }

    public static func fashionInfo(_ m: Module) -> ModelInfo {
        ModelInfo(architecture: ModuleRegistry.spec(of: m), classNames: fashionClassNames, inputShape: [1, 28, 28],
                  normalization: Normalization(scale: 1 / 255, mean: [0], std: [1]), extra: ["dataset": "fashion-mnist"])
    }

    public static let names = ["mlp", "cnn", "cnn-bn"]
    /// The names as a choice in a sentence: "mlp, cnn or cnn-bn".
    public static var namesInWords: String { names.dropLast().joined(separator: ", ") + " or " + names.last! }

    public static func entry(_ name: String) -> Entry? {
        switch name {
        case "mlp": return Entry(name: name, build: fashionMLP, info: fashionInfo)
        case "cnn": return Entry(name: name, build: fashionCNN, info: fashionInfo)
        case "cnn-bn": return Entry(name: name, build: fashionCNNBatchNorm, info: fashionInfo)
        default: return nil
        }
    }
}
