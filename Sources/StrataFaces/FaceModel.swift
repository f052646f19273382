import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// A trained face-embedding network with what using it needs: input size, normalisation and
/// the distance threshold for "same person", stored in one model file.
///
/// ```swift
/// let fm = try FaceModel.load("faces.safetensors")
/// let e = try fm.embed([try Image.load("me.jpg")])      // [1, 128], unit length
/// ```
public struct FaceModel {
    public let net: any FaceEmbeddingNetwork
    public var info: ModelInfo
    /// Cosine distance below which two faces count as the same person.
    public var threshold: Float
    /// The face box cut from every photo before it is resized (nil: the whole photo).
    public var crop: FaceCrop? {
        get { try? info.section(FaceCrop.self) }
        set { try? info.setSection(newValue) }
    }

    /// Test-time views per photo (`Warp.views`): the face box, then small shifts and zooms of it,
    /// their embeddings summed. Only for models with a face box; 1 when not stored.
    public var views: Int {
        get { info.extra["face_views"].flatMap(Int.init) ?? 1 }
        set { info.extra["face_views"] = newValue > 1 ? String(newValue) : nil }
    }

    /// An ensemble's networks, each a model of its own (crop, input shape); empty for a single
    /// network. `net` is then the first member's.
    public var members: [FaceModel] = []

    public init(net: any FaceEmbeddingNetwork, info: ModelInfo, threshold: Float) {
        self.net = net
        self.info = info
        self.threshold = threshold
    }

    /// Several trained models as one: their unit embeddings are joined (scaled to unit length).
    /// One model given alone stays as it is (threshold aside); several take the first one's
    /// test-time views and score.
    public init(ensemble: [FaceModel], threshold: Float) {
        precondition(!ensemble.isEmpty, "FaceModel: an ensemble needs at least one model")
        if ensemble.count == 1 {
            self = ensemble[0]
            self.threshold = threshold
            return
        }
        let flat = ensemble.flatMap { $0.members.isEmpty ? [$0] : $0.members }   // ensembles of ensembles: one level
        self.init(net: flat[0].net, info: flat[0].info, threshold: threshold)
        if flat.count > 1 {
            members = flat
            try? info.setSection(FaceCrop?.none)   // each member crops for itself
        }
        views = ensemble[0].views
        score = ensemble[0].score
    }

    /// Its networks, each a model of its own with its face box: the members of an ensemble, or
    /// the model itself.
    public var networks: [FaceModel] { members.isEmpty ? [self] : members }

    /// Length of the embeddings `embed` returns.
    public var embeddingSize: Int { members.isEmpty ? net.embeddingSize : members.reduce(0) { $0 + $1.net.embeddingSize } }

    /// Each member's input shape and crop, as stored in the model file.
    struct MemberInput: Codable {
        var inputShape: [Int]
        var crop: FaceCrop?
        var recipe: String?
    }

    /// Images smaller than this on a side are refused.
    public static let minSide = 16

    public static func load(_ path: String) throws -> FaceModel { try from(try SavedModel.load(path), source: path) }

    /// The face model a loaded model file holds; errors name `path`.
    public static func from(_ saved: SavedModel, source path: String) throws -> FaceModel {
        if let ens = saved.model as? FaceEnsemble {
            guard let t = saved.info.extra["face_threshold"].flatMap(Float.init) else {
                throw StrataError("\(path): face model without a distance threshold in its metadata")
            }
            guard let s = saved.info.extra["face_members"], let inputs = try? JSONDecoder().decode([MemberInput].self, from: Data(s.utf8)),
                  inputs.count == ens.members.count else {
                throw StrataError("\(path): face ensemble without a valid input shape and crop per member in its metadata")
            }
            let models = zip(ens.nets, inputs).map { net, input -> FaceModel in
                net.eval()
                var i = saved.info
                i.architecture = ModuleRegistry.spec(of: net)
                i.inputShape = input.inputShape
                i.extra = [:]
                i.recipe = input.recipe
                var m = FaceModel(net: net, info: i, threshold: t)
                m.crop = input.crop
                return m
            }
            var fm = FaceModel(ensemble: models, threshold: t)
            fm.info = saved.info
            return fm
        }
        guard let net = saved.model as? any FaceEmbeddingNetwork else {
            throw StrataError("\(path): not a face model (its architecture is \(saved.model.typeName)), not one trained as a face model")
        }
        guard let t = saved.info.extra["face_threshold"].flatMap(Float.init) else {
            throw StrataError("\(path): face model without a distance threshold in its metadata")
        }
        net.eval()
        return FaceModel(net: net, info: saved.info, threshold: t)
    }

    /// Writes the model atomically; `half` stores the weights as float16 (half the size).
    public func save(to path: String, half: Bool = false) throws {
        var i = info
        i.extra["face_threshold"] = String(threshold)
        if members.isEmpty { return try SavedModel(model: net, info: i).save(to: path, half: half) }
        let inputs = members.map { MemberInput(inputShape: $0.info.inputShape, crop: $0.crop, recipe: $0.info.recipe) }
        i.extra["face_members"] = String(decoding: try JSONEncoder.sortedKeys.encode(inputs), as: UTF8.self)
        let ens = FaceEnsemble(members.map(\.net))
        i.architecture = ModuleRegistry.spec(of: ens)
        try SavedModel(model: ens, info: i).save(to: path, half: half)
    }

    /// A short fingerprint of the weights (FNV-1a over their bytes), stored in galleries so a
    /// gallery is never matched against embeddings of another model.
    public var fingerprint: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        let module: Module = members.isEmpty ? net : FaceEnsemble(members.map(\.net))
        for (name, p) in module.namedStates() {
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            p.value.withUnsafeBufferPointer { buf in
                for v in buf { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
            }
        }
        return String(h, radix: 16)
    }

    /// Unit-length embeddings of face images of any size (the face box cut out when the model has
    /// one, converted to grey or RGB, resized to the network's input, standardised; the mirror
    /// image is averaged in). Large sets are embedded `embedChunk` images at a time.
    /// `views` overrides the model's own number of test-time views.
    public func embed(_ images: [Image], names: [String]? = nil, views: Int? = nil) throws -> Tensor {
        guard !images.isEmpty else { throw StrataError("no photos to embed") }
        if !members.isEmpty {
            let parts = try members.map { try $0.embed(images, names: names, views: views ?? self.views) }
            return FaceEnsemble.join(parts)
        }
        let viewCount = views ?? self.views
        let (c, h, w) = (info.inputShape[0], info.inputShape[1], info.inputShape[2])
        let box = crop
        var prepared: [Image] = []
        for (i, img) in images.enumerated() {
            guard img.width >= FaceModel.minSide && img.height >= FaceModel.minSide else {
                throw StrataError("\(names?[i] ?? "image \(i)"): image is \(img.width)x\(img.height), far too small for a face (at least \(FaceModel.minSide)x\(FaceModel.minSide) pixels)")
            }
            if let box, viewCount > 1 {   // the context image: the views shift and zoom within it
                let ctx = box.contextImage(img)
                prepared.append(c == 1 ? ctx.grayscale() : ctx.rgb())
            } else {
                let face = box.map { $0.apply(img) } ?? img
                prepared.append((c == 1 ? face.grayscale() : face.rgb()).resized(width: w, height: h))
            }
        }
        var parts: [Tensor] = []
        for start in stride(from: 0, to: prepared.count, by: FaceModel.embedChunk) {
            let chunk = Array(prepared[start..<Swift.min(start + FaceModel.embedChunk, prepared.count)])
            if box != nil && viewCount > 1 {
                let context = Tensor.stack(chunk.map { $0.tensor(scale: info.normalization.scale) })
                parts.append(net.embedding(views: Warp.views(viewCount).map { $0.apply(context, outputSize: (h, w)).standardizedPerImage() }))
            } else {
                parts.append(net.embedding(try Preprocessing(info).tensor(images: chunk)))
            }
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }

    /// Embeddings of already loaded, normalised images of one network: context images (cut to the
    /// window, one per stored view) when the model has a face box, else images at its input size.
    public func embedStored(_ d: LabeledImages, views viewCount: Int) -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: d.count, by: FaceModel.embedChunk) {
            let x = d.batch(Array(start..<Swift.min(start + FaceModel.embedChunk, d.count))).inputs
            if let box = crop {   // the stored views of each context image, as `embed` takes them
                parts.append(net.embedding(views: Warp.views(viewCount).map { $0.apply(x, outputSize: (box.size, box.size)).standardizedPerImage() }))
            } else {
                parts.append(net.embedding(x))
            }
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }

    /// Photos prepared and embedded at a time: their context images and views are all that is held.
    public static let embedChunk = 64

    /// Embeddings `[N, D]` of `count` photos that `load` reads `embedChunk` at a time (the images and
    /// the names errors give), so only one chunk's decoded photos are in memory at once.
    public func embedInChunks(_ count: Int, views: Int? = nil, _ load: (Range<Int>) throws -> (images: [Image], names: [String])) throws -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: count, by: FaceModel.embedChunk) {
            let (images, names) = try load(start..<Swift.min(start + FaceModel.embedChunk, count))
            parts.append(try embed(images, names: names, views: views))
        }
        if parts.isEmpty { return try embed([], views: views) }   // throws: no photos
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }

    /// Cosine distance between unit vectors.
    public static func distance(_ a: [Float], _ b: [Float]) -> Float {
        1 - zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

/// Enrolled people: each name with the embeddings of its photos, tied to one model by its
/// fingerprint. Written as JSON, atomically.
public struct Gallery: Codable {
    public struct Person: Codable {
        public var name: String
        public var embeddings: [[Float]]
    }

    public var model: String
    public var embeddingSize: Int
    public var people: [Person]

    public init(model: FaceModel) {
        self.model = model.fingerprint
        embeddingSize = model.embeddingSize
        people = []
    }

    /// Reads a gallery and checks it was made by `model`.
    public static func load(_ path: String, for model: FaceModel) throws -> Gallery {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StrataError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such gallery file (enrol someone first)")")
        }
        let g: Gallery
        do { g = try JSONDecoder().decode(Gallery.self, from: data) } catch {
            throw StrataError("\(path): not a valid gallery file (\(error.localizedDescription))")
        }
        guard g.model == model.fingerprint else {
            throw StrataError("\(path): this gallery was made by another model (fingerprint \(g.model), this model \(model.fingerprint)); enrol the people again with this model")
        }
        guard g.embeddingSize == model.embeddingSize else {
            throw StrataError("\(path): the gallery says its embeddings have \(g.embeddingSize) values, this model makes \(model.embeddingSize)")
        }
        for p in g.people {
            guard !p.name.trimmingCharacters(in: .whitespaces).isEmpty else { throw StrataError("\(path): a person without a name") }
            guard !p.embeddings.isEmpty else { throw StrataError("\(path): \(p.name) has no embeddings") }
            for e in p.embeddings {
                guard e.count == g.embeddingSize else {
                    throw StrataError("\(path): \(p.name) has an embedding of \(e.count) values; the model makes \(g.embeddingSize)")
                }
                guard e.allSatisfy({ $0.isFinite }) else { throw StrataError("\(path): \(p.name) has an embedding that is not finite") }
            }
        }
        return g
    }

    public func save(_ path: String) throws {
        try FileIO.writeAtomically(try JSONEncoder.sortedKeys.encode(self), to: path)
    }

    /// Adds photos' embeddings to `name` (a new person, or more photos of a known one).
    public mutating func enroll(_ name: String, _ embeddings: Tensor) {
        let rows = (0..<embeddings.shape[0]).map { Array(embeddings.scalars[($0 * embeddings.shape[1])..<(($0 + 1) * embeddings.shape[1])]) }
        if let i = people.firstIndex(where: { $0.name == name }) { people[i].embeddings += rows } else { people.append(Person(name: name, embeddings: rows)) }
    }

    /// The nearest person for an embedding: the distance (the model's score; cosine by default)
    /// to the unit mean of each person's embeddings.
    public func nearest(_ e: [Float], scorer: FaceScorer = .cosine) -> (name: String, distance: Float)? {
        guard !people.isEmpty else { return nil }
        let means = people.map { p -> [Float] in
            var mean = [Float](repeating: 0, count: e.count)
            for v in p.embeddings { for i in 0..<e.count { mean[i] += v[i] } }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return mean.map { $0 / Swift.max(norm, 1e-12) }
        }
        let d = scorer.distances(Tensor(e, shape: [1, e.count]), Tensor(means.flatMap { $0 }, shape: [means.count, e.count]))[0]
        let best = d.indices.min { d[$0] < d[$1] }!
        return (people[best].name, d[best])
    }
}
