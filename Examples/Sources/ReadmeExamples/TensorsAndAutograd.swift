// README.md, "Tensors and autograd".
import Strata

func tensorsAndAutograd() {
    var w = Tensor.randn([3, 4], seed: 0)
    w.requiresGrad = true
    let x = Tensor.randn([8, 4], seed: 1)
    let y = x.matmul(w.T).relu()             // [8, 3]
    let loss = y.logSoftmax().mean()
    loss.backward()
    print(w.grad!.shape)                      // [3, 4]

    let probs = noGrad { y.softmax() }       // no graph recorded
    print(probs.shape)
}
