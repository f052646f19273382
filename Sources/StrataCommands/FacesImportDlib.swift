import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesImportDlib: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import-dlib",
        abstract: "Make a face model of dlib's pretrained face ResNet (the network of face_recognition).",
        discussion: """
        First convert dlib's file: python3 Tools/convert_dlib_face_model.py --find dlib-weights.safetensors
        (after pip install face_recognition_models), or run `make faces-dlib`, which does both.
        """)

    @Argument(help: "The weights Tools/convert_dlib_face_model.py wrote.") var weights: String
    @Option(help: "Where to write the face model.") var out: String
    @Option(help: "Cosine distance below which two faces are one person (default: measured with --calibrate, else \(FaceModel.dlibThreshold)).") var threshold: Float?
    @Option(help: "LFW-style folder whose people outside the held-out share (as `faces pairs`) set the threshold at their equal error rate.") var calibrate: String?
    @Option(help: "With --calibrate: how many people.") var calibratePeople = 300

    func validate() throws {
        if let t = threshold, !(t > 0 && t < 2) { throw ValidationError("--threshold must be in (0, 2), got \(t)") }
        if threshold != nil && calibrate != nil { throw ValidationError("give --threshold or --calibrate, not both") }
        if !(2...100_000).contains(calibratePeople) { throw ValidationError("--calibrate-people must be in 2...100000, got \(calibratePeople)") }
    }

    func run() throws {
        try FileIO.checkModelOutput(out)
        var fm = try FaceModel.dlib(weights: weights, threshold: threshold ?? FaceModel.dlibThreshold)
        if let dir = calibrate {
            let c = try fm.calibratedThreshold(folder: dir, people: calibratePeople)
            fm.threshold = c.threshold
            print(String(format: "calibrated on %d photos of %d people of %@: equal error rate %.2f %% at distance %.4f", c.photos, c.people, dir, 100 * c.eer, Double(c.threshold)))
        }
        try fm.save(to: out)
        print("\(out): dlib's face ResNet, \(fm.net.parameterCount) parameters, 150x150 RGB chips, threshold \(fm.threshold)")
    }
}
