import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Faces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Face recognition: train an embedding, enrol people, identify and verify faces, evaluate.",
        subcommands: [FacesDetect.self, FacesTrain.self, FacesTrainDetector.self, FacesCheckDetector.self, FacesEnroll.self, FacesIdentify.self, FacesVerify.self, FacesEvaluate.self, FacesPairs.self, FacesEmbed.self, FacesImportDlib.self])
}
