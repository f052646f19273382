#!/usr/bin/env python3
"""Writes the PyTorch-layout test fixtures for `strata --arch mlp|cnn` with numpy only.

For each architecture of ../shared/bench/reference/train_fashion.py it draws weights (seeded),
saves them as a weights-only .safetensors file under PyTorch's state_dict names (what
`safetensors.torch.save_file(model.state_dict(), path)` writes), computes the logits of two fixed
inputs with a plain numpy forward pass, and stores inputs and logits as JSON.

    python3 Tools/make_torch_fixture.py              # writes Tests/StrataTests/Fixtures/
    python3 Tools/make_torch_fixture.py --check-torch  # also compares with torch, if installed
"""
import argparse, json, os, struct
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "StrataTests", "Fixtures")


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def uniform(rng, shape, fan_in):  # PyTorch's default bound for Linear and Conv2d
    b = 1 / np.sqrt(fan_in)
    return rng.uniform(-b, b, shape).astype(np.float32)


def conv3x3_pad1(x, w, b):  # x [N, C, H, W], w [O, C, 3, 3]
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j].astype(np.float64))
    return out + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x):
    return np.maximum(x, 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--check-torch", action="store_true")
    args = p.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261125)
    x = rng.uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    mlp = {"1.weight": uniform(rng, (256, 784), 784), "1.bias": uniform(rng, (256,), 784),
           "3.weight": uniform(rng, (128, 256), 256), "3.bias": uniform(rng, (128,), 256),
           "5.weight": uniform(rng, (10, 128), 128), "5.bias": uniform(rng, (10,), 128)}
    cnn = {"0.weight": uniform(rng, (32, 1, 3, 3), 9), "0.bias": uniform(rng, (32,), 9),
           "3.weight": uniform(rng, (64, 32, 3, 3), 288), "3.bias": uniform(rng, (64,), 288),
           "7.weight": uniform(rng, (128, 3136), 3136), "7.bias": uniform(rng, (128,), 3136),
           "9.weight": uniform(rng, (10, 128), 128), "9.bias": uniform(rng, (10,), 128)}
    d = {k: v.astype(np.float64) for k, v in mlp.items()}
    h = x.reshape(2, -1).astype(np.float64)
    h = relu(h @ d["1.weight"].T + d["1.bias"])
    h = relu(h @ d["3.weight"].T + d["3.bias"])
    mlp_logits = h @ d["5.weight"].T + d["5.bias"]
    d = {k: v.astype(np.float64) for k, v in cnn.items()}
    h = maxpool2(relu(conv3x3_pad1(x.astype(np.float64), d["0.weight"], d["0.bias"])))
    h = maxpool2(relu(conv3x3_pad1(h, d["3.weight"], d["3.bias"])))
    h = relu(h.reshape(2, -1) @ d["7.weight"].T + d["7.bias"])
    cnn_logits = h @ d["9.weight"].T + d["9.bias"]
    save_safetensors(os.path.join(OUT, "torch_mlp.safetensors"), mlp)
    save_safetensors(os.path.join(OUT, "torch_cnn.safetensors"), cnn)
    with open(os.path.join(OUT, "torch_logits.json"), "w") as f:
        json.dump({"input_shape": [2, 1, 28, 28], "input": [float(v) for v in x.ravel()],
                   "mlp_logits": mlp_logits.tolist(), "cnn_logits": cnn_logits.tolist()}, f)
    print("wrote", os.path.normpath(OUT))
    if args.check_torch:
        import torch
        from torch import nn
        for name, state, ref, model in [
            ("mlp", mlp, mlp_logits, nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))),
            ("cnn", cnn, cnn_logits, nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                                                   nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)))]:
            model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            with torch.no_grad():
                out = model(torch.from_numpy(x)).double().numpy()
            print(f"{name}: max |torch - numpy| = {np.abs(out - ref).max():.2e}")


if __name__ == "__main__":
    main()
