// swift-tools-version:5.10
import PackageDescription

// README.md's Swift code, compiled: every ```swift block of the README (except the
// `// Package.swift` manifest examples) is in Sources/ReadmeExamples, one file per README
// section, and Tools/check_readme_examples.py fails when a block is not found there.
// `make examples-check` runs that script and builds this package (compiled only, never run:
// several examples read data files).
//
// The parent is a path dependency, so SwiftPM names it after its folder (whatever the checkout
// is called), not after the `name:` in its manifest; `package:` below must be that folder name.
let parentFolder = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "strata")

let package = Package(
    name: "StrataReadmeExamples",
    dependencies: [
        .package(path: ".."),
    ],
    targets: [
        // A library: compiling is the check, and it needs only the `Strata` and `StrataFaces`
        // products (not the CLI or swift-argument-parser).
        .target(name: "ReadmeExamples", dependencies: [.product(name: "Strata", package: parentFolder),
                                                       .product(name: "StrataFaces", package: parentFolder)]),
    ]
)
