// README.md, "Distributed training (Open MPI)": data-parallel training over any Communicator
// (compiled, not run; the Examples package does not link Open MPI, so `world` is a parameter).
import Strata

// `world`: StrataDistributed's `try ProcessGroup.world()` (MPI_Init) in a process mpirun started.
func fitOnEveryProcess(_ trainer: Trainer, _ train: LabeledImages, _ test: LabeledImages, world: Communicator) throws {
    trainer.dataParallel = try DataParallel(trainer.model, communicator: world)   // rank 0's weights everywhere
    var options = FitOptions(epochs: 3, batchSize: 64)   // the batch of all the processes together
    options.checkpointPath = "ck.safetensors"            // written by rank 0 alone
    try trainer.fit(train, validation: test, options: options)   // then ProcessGroup.finalize()
}
