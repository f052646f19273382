import Foundation
import StrataCore

/// A typed part of a model file's metadata, owned by the module that defines it (the text
/// tokenizer in StrataData, the face settings in StrataFaces): the model-file layer stores it
/// without knowing its type.
///
/// ```swift
/// struct Calibration: ModelSection, Codable { static let key = "calibration"; var temperature: Float }
/// try info.setSection(Calibration(temperature: 1.5))
/// let c = try info.section(Calibration.self)          // nil when the file has none
/// ```
public protocol ModelSection: Codable {
    /// The metadata key it is stored under, as JSON.
    static var key: String { get }
}

extension ModelInfo {
    /// The section stored in this model's metadata, or nil when there is none; a section that
    /// does not decode is an error naming its key.
    public func section<S: ModelSection>(_ type: S.Type) throws -> S? {
        guard let text = extra[S.key] else { return nil }
        do {
            return try JSONDecoder().decode(S.self, from: Data(text.utf8))
        } catch {
            throw StrataError("metadata '\(S.key)' is not valid")
        }
    }

    /// Stores `value` (nil removes the section).
    public mutating func setSection<S: ModelSection>(_ value: S?) throws {
        guard let value else { extra[S.key] = nil; return }
        extra[S.key] = String(decoding: try JSONEncoder.sortedKeys.encode(value), as: UTF8.self)
    }
}

extension JSONEncoder {
    /// An encoder that writes object keys in order, so the same value gives the same bytes in every
    /// process (Swift seeds its hashing per process): model metadata, galleries.
    package static var sortedKeys: JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return enc
    }
}

extension ModelInfo {
    /// The data set the model was trained on ("fashion-mnist", "sentiment", a folder).
    public var dataset: String? {
        get { extra["dataset"] }
        set { extra["dataset"] = newValue }
    }

    /// What the history's validation figures were measured on, when not held-out validation
    /// data: "test" when training only reported the test split after each epoch (it chose
    /// nothing). Set by `Trainer.fit` from `FitOptions.validationName`.
    public var validationName: String? {
        get { extra["validation"] }
        set { extra["validation"] = newValue }
    }

    /// The command line that repeats the training (one line per network of an ensemble).
    public var recipe: String? {
        get { extra["recipe"] }
        set { extra["recipe"] = newValue }
    }
}
