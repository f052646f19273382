import Foundation
import CStrata
import StrataCore

/// Data-parallel training of one model on every member of a `Communicator`, as PyTorch's
/// `DistributedDataParallel` does it: each process holds a whole copy of the model and trains it
/// on its share of every batch; the gradients are averaged over the processes before each
/// optimizer step, so every copy takes the same step and stays equal to the others.
///
/// - At the start (`init`), rank 0's parameters and buffers are broadcast to every process,
///   after checking that every process built a model of the same shapes, and a checksum of the
///   result is compared over the processes.
/// - `averageGradients()`, after `backward()`: the gradients are copied into fused buckets of
///   about `bucketBytes` (25 MB, as DDP), in reverse parameter order (the order backward produces
///   them), each bucket is summed over the processes with one all-reduce, divided by the number
///   of processes and copied back.
/// - BatchNorm: each process normalises with the statistics of its own share of the batch, as DDP
///   does by default (no synchronised BatchNorm); `averageBuffers()` averages the running
///   statistics over the processes, which `Trainer.fit` calls before validating and so before
///   every checkpoint and saved model.
///
/// When the loss of a batch is the mean over its examples and the processes' shares are equal,
/// the average of their gradients is the gradient of the mean over the whole batch: `N`
/// processes with batch `B / N` each take the steps one process takes with batch `B`.
///
/// ```swift
/// let dp = try DataParallel(model, communicator: world)   // rank 0's weights everywhere
/// loss.backward()
/// try dp.averageGradients()
/// optimizer.step()
/// ```
public final class DataParallel {
    public let model: Module
    public let communicator: Communicator
    /// The fused buckets' size in bytes (a parameter larger than it gets a bucket of its own).
    public let bucketBytes: Int
    /// Trainable parameters by bucket, each bucket in reverse parameter order.
    public let buckets: [[Parameter]]
    private var bucketBuffers: [[Float]]
    /// Every parameter and buffer, in `namedStates` order.
    private let states: [(String, Parameter)]

    /// Time spent in `averageGradients` (filling the buckets, the all-reduces, copying back), in
    /// seconds, and its calls: the cost of data parallelism per step.
    public private(set) var gradientSeconds = 0.0, gradientCalls = 0

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Broadcasts rank 0's parameters and buffers to every process and checks that they agree.
    /// Throws when the processes built models of different shapes, or a collective fails.
    public init(_ model: Module, communicator: Communicator, bucketBytes: Int = 25 << 20) throws {
        precondition(bucketBytes > 0, "DataParallel: bucketBytes must be positive, got \(bucketBytes)")
        self.model = model
        self.communicator = communicator
        self.bucketBytes = bucketBytes
        states = model.namedStates()
        let limit = Swift.max(1, bucketBytes / MemoryLayout<Float>.stride)
        var buckets: [[Parameter]] = [], current: [Parameter] = [], filled = 0
        for p in model.parameters().reversed() {
            if filled > 0 && filled + p.count > limit {
                buckets.append(current)
                (current, filled) = ([], 0)
            }
            current.append(p)
            filled += p.count
        }
        if !current.isEmpty { buckets.append(current) }
        self.buckets = buckets
        // The last bucket also carries one presence flag per parameter of the step (a parameter
        // that no process used keeps no gradient) and the caller's extra sums.
        bucketBuffers = buckets.map { [Float](repeating: 0, count: $0.reduce(0) { $0 + $1.count }) }
        try synchronizeStates()
    }

    /// Rank 0's parameters and buffers onto every process, after checking that every process has
    /// the same tensors (count and sizes); then compares a checksum of them over the processes.
    public func synchronizeStates() throws {
        communicator.setActivity("the check that every process built the same model")
        let signature = DataParallel.signature(states.map { $0.1.shape })
        let all = try communicator.allGather([Float(states.count), signature.0, signature.1])
        for r in 1..<size where Array(all[(3 * r)..<(3 * r + 3)]) != Array(all[0..<3]) {
            throw StrataError("data-parallel training: rank \(r) built a model of other tensors than rank 0 (\(Int(all[3 * r])) tensors against \(Int(all[0]))); every process must build the same model")
        }
        communicator.setActivity("the broadcast of rank 0's parameters and buffers")
        var flat = flatten(states.map { $0.1 })
        try flat.withUnsafeMutableBufferPointer { try communicator.broadcast($0, root: 0) }
        unflatten(flat, into: states.map { $0.1 })
        communicator.setActivity("the check that every process holds rank 0's parameters")
        let sum = DataParallel.checksum(flat)
        let sums = try communicator.allGather([sum.0, sum.1])
        for r in 1..<size where sums[2 * r] != sums[0] || sums[2 * r + 1] != sums[1] {
            throw StrataError("data-parallel training: rank \(r)'s parameters differ from rank 0's after the broadcast (checksums \(sums[2 * r]), \(sums[2 * r + 1]) against \(sums[0]), \(sums[1]))")
        }
    }

    /// Averages every trainable parameter's gradient over the processes (a parameter without a
    /// gradient counts as zeros; it keeps no gradient when no process has one), in fused buckets.
    /// `sums` (losses, counts, flags) are summed over the processes in the same all-reduce.
    public func averageGradients(summing sums: inout [Double]) throws {
        let started = ProcessInfo.processInfo.systemUptime
        defer { (gradientSeconds, gradientCalls) = (gradientSeconds + ProcessInfo.processInfo.systemUptime - started, gradientCalls + 1) }
        let scale = 1 / Float(size)
        for (k, bucket) in buckets.enumerated() {
            let last = k == buckets.count - 1
            var buffer = bucketBuffers[k]
            bucketBuffers[k] = []   // the buffer alone holds its storage while it is filled
            if last { buffer += [Float](repeating: 0, count: bucket.count + 2 * sums.count) }
            buffer.withUnsafeMutableBufferPointer { b in
                var offset = 0
                for p in bucket {
                    if let g = p.grad {
                        g.withUnsafeBufferPointer { (b.baseAddress! + offset).update(from: $0.baseAddress!, count: $0.count) }
                    } else {
                        (b.baseAddress! + offset).update(repeating: 0, count: p.count)
                    }
                    offset += p.count
                }
                if last {
                    for (i, p) in bucket.enumerated() { b[offset + i] = p.grad == nil ? 0 : 1 }
                    offset += bucket.count
                    for (i, v) in sums.enumerated() {
                        let hi = Float(v)
                        (b[offset + 2 * i], b[offset + 2 * i + 1]) = (hi, Float(v - Double(hi)))
                    }
                }
            }
            try buffer.withUnsafeMutableBufferPointer { try communicator.allReduceSum($0) }
            buffer.withUnsafeBufferPointer { b in
                var offset = 0
                let flags = offset + bucket.reduce(0) { $0 + $1.count }
                for (i, p) in bucket.enumerated() {
                    if last && b[flags + i] == 0 {
                        p.grad = nil
                    } else {
                        var g = Tensor(uninitializedShape: p.shape)
                        g.withUnsafeMutableBufferPointer { dst in
                            for j in 0..<dst.count { dst[j] = b[offset + j] * scale }
                        }
                        p.grad = g
                    }
                    offset += p.count
                }
                if last {
                    let base = flags + bucket.count
                    for i in sums.indices { sums[i] = Double(b[base + 2 * i]) + Double(b[base + 2 * i + 1]) }
                }
            }
            if last { buffer.removeLast(bucket.count + 2 * sums.count) }
            bucketBuffers[k] = buffer
        }
    }

    /// Averages every trainable parameter's gradient over the processes.
    public func averageGradients() throws {
        var none: [Double] = []
        try averageGradients(summing: &none)
    }

    /// Averages the buffers (BatchNorm's running statistics) over the processes, so that every
    /// process evaluates and saves the same model. Nothing happens for a model without buffers.
    public func averageBuffers() throws {
        let buffers = states.map { $0.1 }.filter { !$0.trainable }
        guard !buffers.isEmpty else { return }
        communicator.setActivity("the average of the BatchNorm running statistics")
        var flat = flatten(buffers)
        try flat.withUnsafeMutableBufferPointer { try communicator.allReduceSum($0) }
        let scale = 1 / Float(size)
        for i in flat.indices { flat[i] *= scale }
        unflatten(flat, into: buffers)
    }

    /// Sums `values` over the processes in double precision (metrics: loss sums, counts).
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var v = values
        try communicator.allReduceSum(&v)
        return v
    }

    /// A seed for process `rank`'s own random stream (dropout, augmentation) drawn from `seed`:
    /// rank 0's is `seed` itself, so one process draws what it would draw without data parallelism.
    public static func seed(_ seed: UInt64, rank: Int) -> UInt64 {
        rank == 0 ? seed : seed ^ (UInt64(rank) &* 0x9E37_79B9_7F4A_7C15 &+ 0xD1B5_4A32_D192_ED03)
    }

    /// Threads per process under `mpirun` when `STRATA_NUM_THREADS` does not say: the machine's
    /// cores (at most its CPU quota) shared by the processes on it (`OMPI_COMM_WORLD_LOCAL_SIZE`
    /// of them), at most the cores this process is bound to (`mpirun` binds each of 2 processes to
    /// one core), at least 1: one thread per process when there are as many processes as cores.
    public static func threadsPerProcess(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         machineCores: Int = Int(strata_machine_cores()),
                                         boundCores: Int = Int(strata_available_cores())) -> Int? {
        guard environment["STRATA_NUM_THREADS"] == nil,
              let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local > 0 else { return nil }
        return Swift.max(1, Swift.min(boundCores, machineCores / local))
    }

    // MARK: helpers

    private func flatten(_ ps: [Parameter]) -> [Float] {
        var flat = [Float](repeating: 0, count: ps.reduce(0) { $0 + $1.count })
        flat.withUnsafeMutableBufferPointer { b in
            var offset = 0
            for p in ps {
                p.value.withUnsafeBufferPointer { if $0.count > 0 { (b.baseAddress! + offset).update(from: $0.baseAddress!, count: $0.count) } }
                offset += p.count
            }
        }
        return flat
    }

    private func unflatten(_ flat: [Float], into ps: [Parameter]) {
        var offset = 0
        for p in ps {
            p.assign(Tensor(Array(flat[offset..<(offset + p.count)]), shape: p.shape))
            offset += p.count
        }
    }

    /// The tensors' shapes as two floats (a weighted sum of their sizes, and of their ranks'
    /// products), equal on processes that built the same model.
    static func signature(_ shapes: [[Int]]) -> (Float, Float) {
        var a: UInt32 = 0, b: UInt32 = 0
        for (i, s) in shapes.enumerated() {
            for (j, d) in s.enumerated() {
                a = a &* 31 &+ UInt32(truncatingIfNeeded: d &* (j + 1))
                b = b &* 131 &+ UInt32(truncatingIfNeeded: d ^ (i &* 7))
            }
            a = a &* 31 &+ UInt32(s.count)
        }
        // 20 bits each: a float holds them exactly.
        return (Float(a & 0xFFFFF), Float(b & 0xFFFFF))
    }

    /// A checksum of the values' bits, as two floats holding 20 bits each.
    static func checksum(_ values: [Float]) -> (Float, Float) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in values { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01B3 }
        return (Float(h & 0xFFFFF), Float((h >> 20) & 0xFFFFF))
    }
}
