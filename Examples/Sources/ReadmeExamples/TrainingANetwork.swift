// README.md, "Training a network": its two blocks (they need Fashion-MNIST and a model file:
// compiled, not run).
import Strata

func trainingANetwork() throws {
    RandomGenerator.manualSeed(0)
    let model = Sequential(
        Conv2D(1, 32, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2),
        Flatten(), Linear(3136, 128), ReLU(), Linear(128, 10))
    print(model.namedParameters().map { $0.0 })   // ["0.weight", "0.bias", "3.weight", ...]
    print(model.summaryTable(inputShape: [1, 28, 28]))   // one example's shape, no batch dimension

    let all = try FashionMNIST.load(.train), test = try FashionMNIST.load(.test)
    // Validation held out of the training images: it chooses the epoch, so it cannot be the test split.
    let train = all.subset(Array(0..<54_000)), validation = all.subset(Array(54_000..<60_000))
    let trainer = Trainer(model: model, optimizer: Adam(model.parameters(), lr: 1e-3),
                          info: ModelZoo.fashionInfo(model))
    var options = FitOptions(epochs: 3, batchSize: 64, seed: 0)
    options.bestModelPath = "fashion.safetensors"   // best validation loss, written atomically
    options.patience = 2                            // early stopping
    try trainer.fit(train, validation: validation, options: options)
    print(Trainer.evaluate(try SavedModel.load("fashion.safetensors").model, test))   // (loss, accuracy), once

    // Or by hand, here on the first 10,000 training images:
    let opt = Adam(model.parameters(), lr: 1e-3)
    model.train()
    for batch in DataLoader(train.prefix(10_000), batchSize: 64, shuffle: true, seed: 0).epoch(0) {
        let loss = crossEntropy(model(batch.inputs), batch.labels)
        opt.zeroGrad()
        loss.backward()
        opt.step()
    }

    // Accuracy on the first 100 test images, and on every tenth one:
    model.eval()
    let few = test.prefix(100).batch(Array(0..<100))            // inputs [100, 1, 28, 28]
    print(noGrad { accuracy(model(few.inputs), few.labels) })   // share classified right
    print(trainer.evaluate(test.subset(Array(stride(from: 0, to: test.count, by: 10)))))   // (loss, accuracy)
}

func predictionsFromASavedModel() throws {
    let saved = try SavedModel.load("fashion.safetensors")
    // The model file says how raw inputs become its input: here grey, 28x28, pixels / 255.
    let x = try Preprocessing(saved.info).tensor(files: ["shoe.png"])   // [1, 1, 28, 28]
    let p = saved.predict(x)[0]
    print(p.label, p.probability)                                       // "Ankle boot" 0.98...
    saved.model.eval()
    let logits = try noGrad { saved.model(try Preprocessing(saved.info).tensor(files: ["bag.png"])) }
    print(logits.softmax().argmaxIndices())
}

// README.md, "Your own images: a folder of classes, from scratch or fine-tuned".
func transferLearning() throws {
    // A pretrained chain of layers, its classifier replaced for the folder's classes and the rest frozen.
    let pretrained = try SavedModel.load("pretrained.safetensors")
    guard let chain = pretrained.model as? Sequential else { return }
    var photos = try ImageFolder.load("photos", channels: pretrained.info.inputShape[0],
                                      size: (pretrained.info.inputShape[2], pretrained.info.inputShape[1]))
    photos.normalization = pretrained.info.normalization
    let (train, test) = photos.splitPerClass(testShare: 0.2, seed: 0)
    let (net, classifier) = try chain.replacingClassifier(classes: photos.classNames.count)
    net.freeze()                  // no gradients, BatchNorm in evaluation mode
    classifier.freeze(false)      // only the new classifier learns
    let info = ModelInfo(model: net, classNames: photos.classNames, inputShape: pretrained.info.inputShape,
                         normalization: pretrained.info.normalization)
    let trainer = Trainer(model: net, optimizer: OptimizerKind.adam.make(net.parameters(), lr: 1e-2), info: info)
    try trainer.fit(train, validation: test, options: FitOptions(epochs: 20, batchSize: 32))

    // Or the whole recipe of `strata train --data photos --from ... --freeze`:
    var recipe = FolderTraining("photos")
    recipe.pretrained = "pretrained.safetensors"
    recipe.freeze = true
    print(try recipe.run().runs[0].accuracy)
}
