// README: "Faces in people's own photos" (compiled, not run: it reads photos).
import Strata
import StrataFaces

func faceDetectionExample() throws {
    let detector = try FaceDetector.builtIn()
    let photo = try Image.load("party.jpg", maxSide: 640)   // upright by EXIF, a large JPEG decoded small
    for face in detector.detect(photo) {
        print(face.x, face.y, face.side, face.score)
    }
    let model = try FaceModel.builtIn()
    let (embeddings, boxes, notes) = try model.embedFaces(["me.jpg"], finding: FaceFinding(detector: detector))
    print(embeddings.shape, boxes, notes)
}
