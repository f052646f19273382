import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesPairs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pairs",
        abstract: "Write seeded LFW View-1 pairs among a seeded held-out share of a folder's people (the developer-side check).",
        discussion: """
        The same --holdout-fraction and --holdout-seed given to `faces train` leave these people out of
        training. Photos must be named like LFW's: DIR/name/name_0001.jpg, numbered from 1.
        """)

    @Option(help: "Folder DIR/name/name_0001.jpg.") var data: String
    @Option(help: "Share of the people held out (rounded down).") var holdoutFraction: Double = 0.1
    @Option(help: "Seed of the held-out people.") var holdoutSeed: Int = 0
    @Option(help: "Same-person pairs.") var same: Int = 300
    @Option(help: "Different-person pairs.") var different: Int = 300
    @Option(help: "Seed of the pairs.") var seed: Int = 0
    @Option(help: "Pairs file to write (View 1 format).") var out: String = "pairs.txt"
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if !(holdoutFraction > 0 && holdoutFraction <= 1) { throw ValidationError("--holdout-fraction must be in (0, 1], got \(holdoutFraction)") }
        if same < 1 || different < 1 { throw ValidationError("--same and --different must be at least 1") }
        if same != different { throw ValidationError("View 1 holds as many same as different pairs; got --same \(same) and --different \(different)") }
    }

    func run() throws {
        let (pairs, held, all) = try FacePairs.heldOut(folder: data, fraction: holdoutFraction, holdoutSeed: holdoutSeed, same: same, different: different, seed: seed)
        try FileIO.writeAtomically(Data(pairs.view1Text().utf8), to: out)
        if json {
            printJSON(["pairs": out, "people": held.count, "same": same, "different": different, "held_out": held])
        } else {
            print("wrote \(same) same and \(different) different pairs among \(held.count) held-out people (of \(all)) to \(out)")
        }
    }
}
