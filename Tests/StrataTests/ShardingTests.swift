import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData

/// DataLoader's shares for data-parallel training (rank and world size), checked without MPI:
/// each "process" is a loader made with its own rank.
final class ShardingTests: XCTestCase {
    /// `n` one-pixel images whose label is their index, so a batch's labels are its examples.
    private func indexed(_ n: Int) -> LabeledImages {
        LabeledImages(pixels: (0..<n).map { UInt8($0 % 256) }, labels: Array(0..<n), imageShape: [1, 1, 1],
                      classNames: (0..<max(n, 1)).map(String.init))
    }

    private func loaders(_ n: Int, batchSize: Int, worldSize: Int, shuffle: Bool = false, seed: Int = 0,
                         dropLast: Bool = false) -> [DataLoader<LabeledImages>] {
        (0..<worldSize).map {
            DataLoader(indexed(n), batchSize: batchSize, shuffle: shuffle, seed: seed, dropLast: dropLast, rank: $0, worldSize: worldSize)
        }
    }

    func testEachRankTakesEveryWorldSizethExamplePaddedFromTheStart() {
        // 10 examples over 3 processes: 4 each, the last two shares padded with examples 0 and 1.
        let ranks = loaders(10, batchSize: 3, worldSize: 3)
        XCTAssertEqual(ranks.map { $0.shard(epoch: 0) }, [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]])
        XCTAssertEqual(ranks.map { $0.shardCount }, [4, 4, 4])
        XCTAssertEqual(ranks.map { $0.batchCount }, [2, 2, 2])
        XCTAssertEqual(ranks.map { $0.epoch(0).map { $0.labels } }, [[[0, 3, 6], [9]], [[1, 4, 7], [0]], [[2, 5, 8], [1]]])
    }

    func testDropLastCutsTheSharesDown() {
        let ranks = loaders(10, batchSize: 2, worldSize: 3, dropLast: true)
        XCTAssertEqual(ranks.map { $0.shard(epoch: 0) }, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
        XCTAssertEqual(ranks.map { $0.batchCount }, [1, 1, 1])
        XCTAssertEqual(ranks.map { $0.epoch(0).map { $0.labels } }, [[[0, 3]], [[1, 4]], [[2, 5]]])
    }

    func testRanksShareOneSeededOrderReshuffledEachEpoch() {
        let ranks = loaders(50, batchSize: 4, worldSize: 4, shuffle: true, seed: 11)
        for epoch in 0..<3 {
            let order = ranks[0].order(epoch: epoch)
            XCTAssertEqual(order.sorted(), Array(0..<50))
            for loader in ranks {
                XCTAssertEqual(loader.order(epoch: epoch), order, "every rank draws the same order")
                // Rank r's share, from the order alone: positions r, r + 4, ..., 13 of them (52 padded).
                let expected = (0..<13).map { order[(loader.rank + 4 * $0) % 50] }
                XCTAssertEqual(loader.shard(epoch: epoch), expected)
                XCTAssertEqual(loader.epoch(epoch).flatMap { $0.labels }, expected)
                XCTAssertEqual(loader.epoch(epoch).count, 4, "13 examples in batches of 4 on every rank")
            }
            // Together the shares hold every example, and only the two padded ones twice.
            let all = ranks.flatMap { $0.shard(epoch: epoch) }
            XCTAssertEqual(Set(all), Set(0..<50))
            XCTAssertEqual(all.count, 52)
            XCTAssertEqual(all.sorted(), (Array(0..<50) + order.prefix(2)).sorted())
        }
        XCTAssertNotEqual(ranks[1].shard(epoch: 0), ranks[1].shard(epoch: 1), "each epoch reshuffles")
        let otherSeed = DataLoader(indexed(50), batchSize: 4, shuffle: true, seed: 12, rank: 1, worldSize: 4)
        XCTAssertNotEqual(otherSeed.shard(epoch: 0), ranks[1].shard(epoch: 0))
    }

    func testBatchBOfAllRanksIsBatchBOfOneProcessWithTheWholeBatch() {
        // Two processes with batches of 3 see, batch by batch, what one process sees with 6.
        for dropLast in [false, true] {
            let single = DataLoader(indexed(20), batchSize: 6, shuffle: true, seed: 3, dropLast: dropLast)
            let ranks = loaders(20, batchSize: 3, worldSize: 2, shuffle: true, seed: 3, dropLast: dropLast)
            for epoch in 0..<2 {
                let whole = single.epoch(epoch).map { $0.labels }
                XCTAssertEqual(whole.map { $0.count }, dropLast ? [6, 6, 6] : [6, 6, 6, 2])
                let shares = ranks.map { $0.epoch(epoch).map { $0.labels } }
                XCTAssertEqual(shares.map { $0.count }, [whole.count, whole.count])
                for b in whole.indices {
                    XCTAssertEqual((shares[0][b] + shares[1][b]).sorted(), whole[b].sorted(), "epoch \(epoch), batch \(b)")
                }
            }
        }
    }

    func testFewerExamplesThanProcessesAndNone() {
        let ranks = loaders(1, batchSize: 4, worldSize: 2)
        XCTAssertEqual(ranks.map { $0.shard(epoch: 0) }, [[0], [0]])
        XCTAssertEqual(ranks.map { $0.epoch(0).map { $0.labels } }, [[[0]], [[0]]])
        let empty = loaders(0, batchSize: 4, worldSize: 2)
        XCTAssertEqual(empty.map { $0.batchCount }, [0, 0])
        XCTAssertEqual(empty.map { $0.epoch(0).map { $0.labels } }, [[], []])
    }

    func testOneProcessIsThePlainLoader() {
        let plain = DataLoader(indexed(10), batchSize: 4, shuffle: true, seed: 7)
        let one = DataLoader(indexed(10), batchSize: 4, shuffle: true, seed: 7, rank: 0, worldSize: 1)
        XCTAssertEqual(one.shard(epoch: 2), plain.order(epoch: 2))
        XCTAssertEqual(one.epoch(2).map { $0.labels }, plain.epoch(2).map { $0.labels })
        XCTAssertEqual(one.batchCount, 3)
    }
}
