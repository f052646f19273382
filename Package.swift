// swift-tools-version:5.10
import PackageDescription

let package = Package(
    name: "Strata",
    products: [
        .library(name: "Strata", targets: ["Strata"]),
        .executable(name: "strata", targets: ["strata"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // Hot kernels in C: compiled per CPU feature level with target attributes and
        // chosen at run time, so no per-target compiler flags are needed for AVX-512.
        .target(name: "CStrata", linkerSettings: [.linkedLibrary("pthread")]),
        // zlib, libpng and libjpeg-turbo from the system (Debian: zlib1g-dev libpng-dev libjpeg62-turbo-dev).
        .target(name: "CStrataIO", linkerSettings: [
            .linkedLibrary("z"), .linkedLibrary("png16"), .linkedLibrary("jpeg"),
        ]),
        // The face model that ships (trained on LFW photos; recipe in Resources/faces-lfw.md).
        .target(name: "Strata", dependencies: ["CStrata", "CStrataIO"],
                resources: [.copy("Resources/faces-lfw.safetensors"), .copy("Resources/faces-lfw.md")]),
        .executableTarget(
            name: "strata",
            dependencies: ["Strata", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "StrataTests", dependencies: ["Strata"], exclude: ["Fixtures"]),
    ]
)
