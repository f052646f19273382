import StrataCore

/// The collectives data-parallel training needs, over `size` processes (or threads) of which this
/// is number `rank`: what PyTorch calls a process group. StrataNN knows no transport;
/// `StrataDistributed.ProcessGroup` implements this over Open MPI, and tests implement it over
/// threads of one process.
///
/// Every member must call the same collectives in the same order with the same element counts:
/// one that skips a call leaves the others waiting. A collective that fails (a process stopped
/// responding, say) throws, with one line saying what was being done.
public protocol Communicator: AnyObject {
    /// This member's index, 0 ..< size.
    var rank: Int { get }
    /// The number of members.
    var size: Int { get }
    /// Waits until every member has called `barrier`.
    func barrier() throws
    /// Copies `root`'s buffer into every member's buffer (all of the same count).
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws
    /// Replaces each element by its sum over the members, in place.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Every member's `input` (all of the same count) in rank order into `output`
    /// (`input.count * size` floats).
    func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws
    /// What the next collectives are for ("gradient all-reduce at epoch 2, step 17"), named by
    /// the error a failing collective throws and by the message of a process stopped meanwhile.
    func setActivity(_ activity: String)
}

extension Communicator {
    public func setActivity(_ activity: String) {}

    /// Sums `values` over the members, in place, in double precision: each value travels as two
    /// floats (its float value and the rest, 48 bits together) in an all-gather, and every member
    /// adds them up in rank order, so all get the same sum (metrics: loss sums, counts).
    public func allReduceSum(_ values: inout [Double]) throws {
        var words = [Float](repeating: 0, count: 2 * values.count)
        for (i, v) in values.enumerated() {
            let hi = Float(v)
            (words[2 * i], words[2 * i + 1]) = (hi, Float(v - Double(hi)))
        }
        let all = try allGather(words)
        for i in values.indices {
            values[i] = (0..<size).reduce(0.0) { $0 + Double(all[$1 * words.count + 2 * i]) + Double(all[$1 * words.count + 2 * i + 1]) }
        }
    }

    /// Every member's `values` (all of the same count), concatenated in rank order.
    public func allGather(_ values: [Float]) throws -> [Float] {
        var out = [Float](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { input in try out.withUnsafeMutableBufferPointer { try allGather(input, into: $0) } }
        return out
    }
}
