import CStrataMPI
import Foundation
import StrataNN

/// A failed MPI call, or MPI used in a state where it cannot work (initialised after it was
/// finalised, say). The message is one line: what Strata asked for, then MPI's own error text.
public struct MPIError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// The MPI error code, or nil when the error was found before calling MPI.
    public let code: Int32?
    /// True when a collective gave up waiting (`ProcessGroup.timeout`): its request is still
    /// pending, so the process must exit without `finalize()`.
    public let timedOut: Bool

    public init(_ message: String, code: Int32? = nil, timedOut: Bool = false) {
        self.message = message
        self.code = code
        self.timedOut = timedOut
    }

    public var description: String { message }

    /// Throws when `rc` is not MPI_SUCCESS, naming `what` and MPI's text for the code.
    static func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
        guard rc != STRATA_MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: 512)
        strata_mpi_error_string(rc, &text, text.count)
        let mpiText = String(cString: text)
        throw MPIError("\(what()) failed: \(mpiText.isEmpty ? "MPI error code \(rc)" : mpiText)", code: rc)
    }
}

/// The processes started together by `mpirun` (MPI's world communicator), as PyTorch's default
/// process group is. Collectives must be called by every process, in the same order, with the
/// same element counts: a process that skips one leaves the others waiting.
///
/// ```swift
/// let world = try ProcessGroup.world()      // MPI_Init on the first call
/// var grads: [Float] = ...
/// try world.allReduceSum(&grads)            // every process now holds the sum
/// try ProcessGroup.finalize()
/// ```
///
/// Every MPI call is made from the thread that initialised MPI (MPI_THREAD_FUNNELED); a failing
/// call throws an `MPIError` (the world communicator's error handler is MPI_ERRORS_RETURN), it
/// does not abort the processes.
///
/// `ProcessGroup` is StrataNN's `Communicator`, so `DataParallel` and `Trainer.fit` train over it.
/// Its all-reduce gives up after `timeout` seconds without an answer (a process that stopped
/// responding), and `installStopHandler()` turns the SIGTERM that `mpirun` sends the surviving
/// processes when one dies into one line naming what they were doing.
public final class ProcessGroup: Communicator, @unchecked Sendable {
    /// This process's index, 0 ..< size.
    public let rank: Int
    /// The number of processes.
    public let size: Int

    /// The most elements one MPI call carries in `broadcast` and `allReduceSum`: MPI counts are
    /// 32-bit, so larger buffers go in several calls.
    public static let maxElementsPerCall = Int(Int32.max)

    /// Seconds an all-reduce waits for the other processes before it throws an `MPIError` with
    /// `timedOut` (0: forever). Default: `STRATA_MPI_TIMEOUT`, else 120.
    public var timeout: Double

    /// What the collectives are doing now, named by their errors (see `setActivity`).
    public private(set) var activity = "a collective"

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
        timeout = ProcessInfo.processInfo.environment["STRATA_MPI_TIMEOUT"].flatMap(Double.init) ?? 120
    }

    public func setActivity(_ activity: String) {
        self.activity = activity
        strata_mpi_set_activity(activity)
    }

    /// On SIGTERM, which `mpirun` sends every other process when one of them dies or exits with
    /// an error, writes `<program>: error: rank R stopped: another process of the run died or
    /// failed during <activity> ...` on stderr, then lets the handler installed before it run
    /// (removing temporary files, say) or exits with status 1.
    public func installStopHandler(program: String = "strata") {
        strata_mpi_install_stop_handler(program, Int32(rank))
    }

    /// True when this process was started by Open MPI's `mpirun` (or `mpiexec`), which sets
    /// OMPI_COMM_WORLD_SIZE in each process it starts.
    public static var launchedByMPIRun: Bool {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// The world group, initialising MPI on the first call (later calls return the same rank
    /// and size). Throws once MPI was finalised: MPI cannot be initialised twice in a process.
    public static func world() throws -> ProcessGroup {
        guard strata_mpi_is_finalized() == 0 else {
            throw MPIError("MPI was already finalised in this process and cannot be initialised again")
        }
        if strata_mpi_is_initialized() == 0 {
            var funneled: Int32 = 0
            try MPIError.check(strata_mpi_init(&funneled), "MPI_Init_thread")
            guard funneled != 0 else {
                throw MPIError("MPI_Init_thread: this Open MPI does not grant MPI_THREAD_FUNNELED")
            }
        }
        var rank: Int32 = 0, size: Int32 = 0
        try MPIError.check(strata_mpi_rank(&rank), "MPI_Comm_rank")
        try MPIError.check(strata_mpi_size(&size), "MPI_Comm_size")
        return ProcessGroup(rank: Int(rank), size: Int(size))
    }

    /// MPI_Finalize: every process calls it once, after its last collective. Nothing happens
    /// when MPI was never initialised or is already finalised.
    public static func finalize() throws {
        guard strata_mpi_is_initialized() != 0, strata_mpi_is_finalized() == 0 else { return }
        try MPIError.check(strata_mpi_finalize(), "MPI_Finalize")
    }

    /// Waits until every process has called `barrier`.
    public func barrier() throws {
        try MPIError.check(strata_mpi_barrier(), "barrier over \(size) processes")
    }

    /// Copies `root`'s buffer into every process's buffer (all of the same count).
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try broadcast(buffer, root: root, maxElementsPerCall: ProcessGroup.maxElementsPerCall)
    }

    /// `broadcast(_:root:)` in MPI calls of at most `maxElementsPerCall` floats.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, maxElementsPerCall: Int) throws {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        guard let root32 = Int32(exactly: root) else {
            throw MPIError("broadcast from root \(root) of \(size) processes: the root is not a process")
        }
        try MPIError.check(strata_mpi_broadcast_float(base, Int64(buffer.count), root32, Int64(maxElementsPerCall)),
                           "broadcast of \(buffer.count) floats from root \(root) of \(size) processes")
    }

    /// Copies `root`'s values into every process's `values` (all of the same count).
    public func broadcast(_ values: inout [Float], root: Int = 0,
                          maxElementsPerCall: Int = ProcessGroup.maxElementsPerCall) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root, maxElementsPerCall: maxElementsPerCall) }
    }

    /// Replaces each element by its sum over all processes, in place (MPI_Iallreduce with
    /// MPI_IN_PLACE and MPI_SUM, waited for at most `timeout` seconds). Every process passes the
    /// same count.
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try allReduceSum(buffer, maxElementsPerCall: ProcessGroup.maxElementsPerCall)
    }

    /// `allReduceSum(_:)` in MPI calls of at most `maxElementsPerCall` floats.
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>, maxElementsPerCall: Int) throws {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        var timedOut: Int32 = 0
        let rc = strata_mpi_allreduce_sum_float_deadline(base, Int64(buffer.count), Int64(maxElementsPerCall), timeout, &timedOut)
        if timedOut != 0 {
            throw MPIError("rank \(rank): no answer from the other processes for \(Int(timeout)) s during \(activity) (all-reduce of \(buffer.count) floats over \(size) processes): a process stopped responding", code: rc, timedOut: true)
        }
        try MPIError.check(rc, "rank \(rank): \(activity) (all-reduce of \(buffer.count) floats over \(size) processes)")
    }

    /// Replaces each value by its sum over all processes. Every process passes the same count.
    public func allReduceSum(_ values: inout [Float],
                             maxElementsPerCall: Int = ProcessGroup.maxElementsPerCall) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0, maxElementsPerCall: maxElementsPerCall) }
    }

    /// Every process's `input` (all of the same count), concatenated in rank order into
    /// `output`, which holds `input.count * size` floats.
    public func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        guard output.count == input.count * size else {
            throw MPIError("all-gather of \(input.count) floats from \(size) processes needs room for \(input.count * size) floats, got \(output.count)")
        }
        guard let inBase = input.baseAddress, let outBase = output.baseAddress, !input.isEmpty else { return }
        try MPIError.check(strata_mpi_allgather_float(inBase, Int64(input.count), outBase),
                           "all-gather of \(input.count) floats from each of \(size) processes")
    }

    /// Every process's `values` (all of the same count), concatenated in rank order.
    public func allGather(_ values: [Float]) throws -> [Float] {
        var output = [Float](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { input in
            try output.withUnsafeMutableBufferPointer { try allGather(input, into: $0) }
        }
        return output
    }
}
