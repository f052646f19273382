import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
import CStrata

/// The fused inference path of BertEncoder against the op-by-op one, on every ISA the machine has.
extension BertTests {
    /// A random encoder whose LayerNorms are not the identity.
    func randomBert(hidden: Int, heads: Int, seed: Int) -> BertEncoder {
        RandomGenerator.manualSeed(seed)
        let bert = BertEncoder(config: BertConfig(vocabSize: 50, hiddenSize: hidden, layers: 2, heads: heads, intermediateSize: 3 * hidden, maxPositions: 64))
        for (name, p) in bert.namedStates() where name.hasSuffix("LayerNorm.weight") || name.hasSuffix("LayerNorm.bias") {
            p.assign(Tensor.randn(p.shape, mean: name.hasSuffix("weight") ? 1 : 0, std: 0.3))
        }
        bert.eval()
        return bert
    }

    func paddedBatch(lengths: [Int], t: Int, seed: Int) -> (ids: Tensor, mask: Tensor) {
        var rng = RandomGenerator(seed: seed)
        var ids = [Float](), mask = [Float]()
        for len in lengths {
            for c in 0..<t {
                ids.append(c < len ? Float(1 + Int(rng.nextFloat() * 48)) : 0)
                mask.append(c < len ? 1 : 0)
            }
        }
        return (Tensor(ids, shape: [lengths.count, t]), Tensor(mask, shape: [lengths.count, t]))
    }

    func maxDiff(_ a: Tensor, _ b: Tensor) -> Float { zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0 }

    /// Head sizes 16, 32 (MiniLM's) and 48 (AVX-512 and AVX2 vector bodies; 48 is an odd number of
    /// AVX-512 vectors), 8 (AVX2 body; AVX-512 falls back to plain C) and 10 (plain C everywhere);
    /// lengths with padding, one token, and more than 16 keys and 8 queries.
    func testFusedInferenceMatchesOpByOp() throws {
        try forEachISA { isa in
            for (hidden, heads) in [(64, 4), (128, 4), (96, 2), (32, 4), (40, 4)] {
                let bert = randomBert(hidden: hidden, heads: heads, seed: hidden)
                for (lengths, t) in [([7, 3, 1, 7], 7), ([37, 20, 5], 37), ([2], 2)] {
                    let (ids, mask) = paddedBatch(lengths: lengths, t: t, seed: t)
                    bert.fusedInference = false
                    let plain = noGrad { bert.hidden(ids: ids, mask: mask) }
                    let plainWeights = bert.layers.map { $0.lastWeights! }
                    bert.fusedInference = true
                    let fused = noGrad { bert.hidden(ids: ids, mask: mask) }
                    // The fused path leaves padding positions (and padding queries' weights) at 0.
                    let n = lengths.count
                    XCTAssertEqual(fused.shape, plain.shape)
                    XCTAssertLessThan(maxDiff(fused, plain * mask.reshape([n, t, 1])), 2e-5, "\(isa) hidden \(hidden) heads \(heads) lengths \(lengths)")
                    for (layer, w) in zip(bert.layers, plainWeights) {
                        let fw = try XCTUnwrap(layer.lastWeights)
                        XCTAssertEqual(fw.shape, w.shape)
                        XCTAssertLessThan(maxDiff(fw, w * mask.reshape([n, 1, t, 1])), 1e-6, "\(isa) weights, hidden \(hidden) lengths \(lengths)")
                    }
                    bert.keepsAttentionWeights = false
                    let unkept = noGrad { bert.hidden(ids: ids, mask: mask) }
                    XCTAssertEqual(unkept.scalars, fused.scalars)
                    XCTAssertNil(bert.layers[0].lastWeights)
                    bert.keepsAttentionWeights = true
                }
            }
        }
    }

    /// A mask with a hole is not a padding suffix: the op-by-op path runs it.
    func testFusedInferenceFallsBackOnOtherMasks() {
        let bert = randomBert(hidden: 32, heads: 4, seed: 3)
        let (ids, _) = paddedBatch(lengths: [4, 4], t: 4, seed: 1)
        let mask = Tensor([1, 0, 1, 1, 1, 1, 1, 1], shape: [2, 4])
        XCTAssertNil(BertEncoder.prefixLengths(mask))
        XCTAssertEqual(BertEncoder.prefixLengths(Tensor([1, 1, 0, 1, 0, 0], shape: [2, 3])), [2, 1])
        bert.fusedInference = false
        let plain = noGrad { bert.hidden(ids: ids, mask: mask) }
        bert.fusedInference = true
        XCTAssertEqual(noGrad { bert.hidden(ids: ids, mask: mask) }.scalars, plain.scalars)
    }

    /// Training records through the op-by-op path whatever the flag says: same loss, same gradients.
    func testGradientsUnchangedByFusedInference() throws {
        let bert = randomBert(hidden: 32, heads: 4, seed: 5)
        let (ids, mask) = paddedBatch(lengths: [5, 2], t: 5, seed: 2)
        var grads: [[Float]] = []
        for fused in [false, true] {
            bert.fusedInference = fused
            bert.zeroGrad()
            let e = BertEncoder.meanPool(bert.hidden(ids: ids, mask: mask), mask: mask)
            (e * Tensor.randn(e.shape, seed: 9)).sum().backward()
            XCTAssertNotNil(bert.layers[0].lastWeights)
            grads.append(bert.parameters().flatMap { $0.grad?.scalars ?? [] })
        }
        XCTAssertFalse(grads[0].isEmpty)
        XCTAssertEqual(grads[0], grads[1])
    }

    /// sk_add_layernorm against LayerNorm(x + res), widths with and without a vector tail.
    func testAddLayerNormKernelOnEveryISA() throws {
        try forEachISA { isa in
            for h in [384, 37, 8, 3] {
                let rows = 9
                let x = Tensor.randn([rows, h], seed: h), res = Tensor.randn([rows, h], seed: h + 1)
                let norm = LayerNorm(h, eps: 1e-12)
                norm.weight.assign(Tensor.randn([h], mean: 1, std: 0.5, seed: 3))
                norm.bias.assign(Tensor.randn([h], seed: 4))
                let want = noGrad { norm(x + res) }
                for withResidual in [true, false] {
                    let out = Tensor(uninitializedShape: [rows, h])
                    let base = withResidual ? x : x + res
                    sk_add_layernorm(rows, h, base.data, withResidual ? res.data : nil, norm.weight.value.data, norm.bias.value.data, 1e-12, out.data)
                    XCTAssertLessThan(maxDiff(out, want), 1e-5, "\(isa) h \(h)")
                }
            }
        }
    }
}
