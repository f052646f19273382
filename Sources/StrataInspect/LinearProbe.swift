import StrataCore
import StrataNN
import StrataData

/// The "linear probe" that measures how linearly separable the classes are in one layer's
/// representation: a `SoftmaxRegression` (StrataNN) fitted to fixed features, standardised
/// with the training set's mean and standard deviation, in shuffled mini-batches through the
/// `Trainer` (Adam on the mean cross-entropy plus a small L2 penalty).
///
/// ```swift
/// let probe = LinearProbe.fit(features: trainX, labels: trainY, classes: 10)
/// let acc = probe.accuracy(features: testX, labels: testY)
/// ```
public typealias LinearProbe = SoftmaxRegression
