// swift-tools-version:5.10
import PackageDescription

// The module stack, each target importing only those below it (checked by
// Tests/StrataTests/LayeringTests.swift; docs/ARCHITECTURE.md draws it):
//
//   strata (CLI)           the command line's main (StrataCommands without Open MPI)
//   strata-mpi             the same command line with Open MPI (`--distributed` under mpirun)
//   strata-mpi-check       checks StrataDistributed's collectives under mpirun
//   StrataCommands         the command line's commands: argument parsing and printing
//   StrataFaces            face recognition: crops, face nets, training, galleries, pairs
//   Strata                 umbrella: re-exports the general-purpose targets below
//   StrataInspect          probes, saliency, charts, the HTML report
//   StrataDistributed      Open MPI process groups and collectives (not in the umbrella)
//   StrataONNX             ONNX export (and import) through swift-protobuf (not in the umbrella)
//   StrataClassic          hand-made features and subspace methods (Eigenfaces, Fisherfaces)
//   StrataData             images and codecs, augmentation, IDX, WAV, text, graphs, and the
//                          models made for each kind of data
//   StrataNN               modules and layers, losses, optimizers, batches, Trainer, model files
//   StrataCore             tensors, storage, autograd, ops, linear algebra
//   CStrata, CStrataIO     C kernels; zlib, libpng, libjpeg-turbo, libexif, libwebp, libheif
//   CStrataMPI, COpenMPI   a C shim over Open MPI's mpi.h; Open MPI through pkg-config
let package = Package(
    name: "Strata",
    products: [
        .library(name: "Strata", targets: ["Strata"]),
        .library(name: "StrataFaces", targets: ["StrataFaces"]),
        .executable(name: "strata", targets: ["strata"]),
        // libFuzzer targets for every parser (docs/FUZZING.md; `make fuzz`).
        .executable(name: "strata-fuzz", targets: ["StrataFuzz"]),
        // Data-parallel training over Open MPI (README "Distributed training (Open MPI)").
        .library(name: "StrataDistributed", targets: ["StrataDistributed"]),
        .executable(name: "strata-mpi-check", targets: ["StrataMPICheck"]),
        .executable(name: "strata-mpi", targets: ["StrataMPICommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        // Hot kernels in C: compiled per CPU feature level with target attributes and
        // chosen at run time, so no per-target compiler flags are needed for AVX-512.
        .target(name: "CStrata", linkerSettings: [.linkedLibrary("pthread")]),
        // zlib, libpng, libjpeg-turbo, libexif, libwebp and libheif from the system (Debian:
        // zlib1g-dev libpng-dev libjpeg62-turbo-dev libexif-dev libwebp-dev libheif-dev).
        .target(name: "CStrataIO", linkerSettings: [
            .linkedLibrary("z"), .linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("exif"), .linkedLibrary("webp"), .linkedLibrary("heif"),
        ]),
        // Open MPI (Debian: openmpi-bin libopenmpi-dev) through pkg-config's ompi-c, whose
        // include folder is not on the default path; the C shim holds the calls that need mpi.h's
        // macros (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE).
        //
        // Only StrataDistributed, strata-mpi and strata-mpi-check need mpi.h. The `strata`
        // executable and the StrataCommands library do not depend on them, so `swift build
        // --product strata` (and a package that uses the Strata or StrataFaces products) builds
        // without Open MPI; `swift build` and `swift test`, which build every target, need it
        // (`make test` installs it).
        .systemLibrary(name: "COpenMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CStrataMPI", dependencies: ["COpenMPI"]),
        .target(name: "StrataCore", dependencies: ["CStrata"]),
        .target(name: "StrataNN", dependencies: ["StrataCore"]),
        .target(name: "StrataData", dependencies: ["StrataNN", "StrataCore", "CStrataIO"]),
        .target(name: "StrataClassic", dependencies: ["StrataData", "StrataNN", "StrataCore"]),
        .target(name: "StrataInspect", dependencies: ["StrataData", "StrataNN", "StrataCore"]),
        .target(name: "Strata", dependencies: ["StrataInspect", "StrataClassic", "StrataData", "StrataNN", "StrataCore"]),
        // The face model that ships (trained on LFW photos; recipe in Resources/faces-lfw.md)
        // belongs to this product alone.
        .target(name: "StrataFaces", dependencies: ["Strata", "StrataONNX", "StrataInspect", "StrataClassic", "StrataData", "StrataNN", "StrataCore"],
                resources: [.copy("Resources/faces-lfw.safetensors"), .copy("Resources/faces-lfw.md"),
                            .copy("Resources/face-detector.safetensors"), .copy("Resources/face-detector.md")]),
        .target(name: "StrataDistributed", dependencies: ["StrataNN", "CStrataMPI"]),
        // ONNX models: Generated/onnx.pb.swift is made once from ONNX's onnx.proto
        // (Tools/generate_onnx_proto.sh) and committed; the build runs no protoc.
        .target(name: "StrataONNX", dependencies: ["StrataData", "StrataNN", "StrataCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .executableTarget(name: "StrataMPICheck", dependencies: ["StrataDistributed", "StrataNN", "StrataCore"]),
        // The commands live in a library so that two executables run them: `strata`, without Open
        // MPI, and `strata-mpi`, which installs StrataDistributed's process group for --distributed.
        .target(
            name: "StrataCommands",
            dependencies: ["StrataFaces", "Strata", "StrataONNX", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "strata", dependencies: ["StrataCommands"]),
        .executableTarget(name: "StrataMPICommand", dependencies: ["StrataCommands", "StrataDistributed"]),
        // One executable holding every fuzz target, chosen by its first argument. Built with
        // -DSTRATA_FUZZ and the fuzzer sanitizer it runs libFuzzer; built plainly it replays files.
        .executableTarget(name: "StrataFuzz", dependencies: ["StrataFaces", "Strata", "StrataONNX"]),
        .testTarget(name: "StrataTests", dependencies: ["StrataFaces", "Strata", "StrataONNX"], exclude: ["Fixtures"]),
    ]
)
