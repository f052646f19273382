#!/usr/bin/env python3
"""Exports PyTorch models to ONNX for Strata's import tests, with inputs and PyTorch's outputs.

For each model it writes OUT/NAME.onnx and OUT/NAME.onnx.test/test_data_set_0/{input_0,output_0}.pb
(ONNX's test-data layout): 8 seeded inputs and what PyTorch computes for them. The Fashion-MNIST
MLP and CNN are the reference script's (../shared/bench/reference/train_fashion.py), trained as it
trains them (5 and 3 epochs, Adam, seed 0) on Debian's dataset-fashion-mnist; PyTorch's own test
accuracy goes to OUT/fashion_accuracy.json, which the import must reproduce. Each goes through both exporters of
torch.onnx: the TorchScript one (`dynamo=False, opset_version=17`) and the default dynamo one.
Weights are inline (the dynamo exporter's external-data file is folded back in for small models).

Also a ResNet-18-shaped network at 64x64 (conv7x7/2, BN, ReLU, maxpool 3x3/2, four stages of two
BasicBlocks, average pool, fc to 10; random weights and random BN running statistics so BN
handling matters), committed channel-reduced (widths 16, 32, 64, 128: the full one is ~45 MB),
and a GRU text classifier (Embedding(1000, 64, padding_idx=0), GRU(64, 64, batch_first), the last
hidden state, Linear(64, 3)) on int64 token ids [8, 20] with some padded ends, and a 1-D
convolutional classifier of raw sound (`audio_cnn`: Conv1d with stride, padding, dilation and
groups, BatchNorm1d with random statistics, MaxPool1d, AvgPool1d, AdaptiveAvgPool1d) on [8, 1, 400],
an upsampler of ConvTranspose2d layers (`upsampler`) on [8, 4, 5, 5], and a network of pooling
with PyTorch's options (`pooling_options`: ceil_mode, count_include_pad=False, dilation) on [8, 3, 23, 23],
and adaptive pooling (`adaptive_pooling`: AdaptiveAvgPool2d to 4x6, AdaptiveMaxPool2d to 1) on [8, 3, 10, 14].
OUT/ops/ holds one-node graphs (GRU and LSTM with sequence lengths, reverse and bidirectional
directions (onnxruntime runs layout 0 only; ONNX's node tests cover layout 1); Slice flipping an axis; Split into unequal parts; opset-18 reductions;
LayerNormalization; Pad's modes and cropping; 1-D Conv and pooling with uneven pads; ConvTranspose with uneven pads and with output_shape;
pooling in ceil mode, with dilation, with padding left out of an average, and with auto_pad; GlobalMaxPool; Conv with auto_pad) with outputs from onnxruntime, an implementation independent of Strata's.
`--full-resnet` writes only the full-width ResNet-18 (widths 64 to 512), for a local check through
`STRATA_ONNX_EXTRA=folder swift test --filter OnnxImportTests` (not committed). `--conv-only` writes
only the 1-D classifier, the upsampler, the pooling network and OUT/ops/ (no training; the other
files stay as they are).

    pip install torch onnx onnxscript onnxruntime numpy
    python3 Tools/make_onnx_fixtures.py Tests/StrataTests/Fixtures/onnx

Commit the result; `make test` needs neither torch nor onnx.
"""
import argparse, gzip, json, os, struct, sys

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision's resnet18 layout, written out (torchvision is not needed)."""
    def __init__(self, widths=(64, 128, 256, 512), classes=10):
        super().__init__()
        w0 = widths[0]
        self.stem = nn.Sequential(nn.Conv2d(3, w0, 7, 2, 3, bias=False), nn.BatchNorm2d(w0), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], w0
        for i, w in enumerate(widths):
            blocks += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def audio_cnn():
    """A 1-D convolutional classifier of raw sound, [N, 1, 400] -> [N, 4]: strided, padded,
    dilated and grouped Conv1d, BatchNorm1d, both 1-D poolings, a global average."""
    return nn.Sequential(nn.Conv1d(1, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(3, 2, 1),
                         nn.Conv1d(8, 16, 5, padding=4, dilation=2, groups=2), nn.ReLU(), nn.AvgPool1d(4, 2, 1),
                         nn.Conv1d(16, 16, 3, bias=False), nn.Tanh(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, 4))


def upsampler():
    """Transposed convolutions growing [N, 4, 5, 5] to [N, 3, 12, 20]: stride 2 with padding and
    output padding, then unequal strides, padding, dilation and groups, then a 1x1 Conv2d."""
    return nn.Sequential(nn.ConvTranspose2d(4, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(8, 6, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2), nn.Tanh(),
                         nn.Conv2d(6, 3, 1))


def pooling_options():
    """PyTorch's pooling options, [N, 3, 23, 23] -> [N, 5]: max pooling in ceil mode (as SqueezeNet
    and GoogLeNet have it), an average in ceil mode that leaves the padding out, dilated max pooling."""
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                         nn.MaxPool2d(2, stride=1, dilation=2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def adaptive_pooling():
    """Adaptive pooling as PyTorch exports it, [N, 3, 10, 14] -> [N, 4]: AdaptiveAvgPool2d to 4x6 of
    an 8x12 map (an AveragePool of 2x2), AdaptiveMaxPool2d to 1 (a GlobalMaxPool)."""
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 6)), nn.Conv2d(6, 6, 3, padding=1), nn.Tanh(),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(6, 4))


def randomize_bn(model):
    # Non-trivial running statistics and affine terms, so BN is not the identity.
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


class GRUClassifier(nn.Module):
    def __init__(self, vocab=1000, dim=64, hidden=64, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, ids):
        _, h = self.gru(self.embed(ids))
        return self.fc(h[-1])


def write(model, x, path, dynamo):
    model.eval()
    with torch.no_grad():
        y = model(x)
    if dynamo:
        prog = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("N")},))
        prog.save(path, include_initializers=True, keep_initializers_as_inputs=False, external_data=False)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    m = onnx.load(path)
    if dynamo and os.path.exists(path + ".data"):   # large models: keep the weights inline
        os.remove(path + ".data")
        onnx.save(m, path)
    onnx.checker.check_model(m)
    folder = os.path.join(path + ".test", "test_data_set_0")
    os.makedirs(folder, exist_ok=True)
    onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(folder, "input_0.pb"))
    onnx.save_tensor(numpy_helper.from_array(y.numpy(), "output"), os.path.join(folder, "output_0.pb"))
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{path}: opset {m.opset_import[0].version}, {os.path.getsize(path):,} bytes, ops {', '.join(ops)}")


FASHION = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def fashion(name):
    """An IDX file of Debian's dataset-fashion-mnist as a numpy array."""
    with gzip.open(os.path.join(FASHION, name + ".gz")) as f:
        raw = f.read()
    dims = struct.unpack(f">{raw[3]}I", raw[4:4 + 4 * raw[3]])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def train_fashion(model, epochs):
    """Trains as ../shared/bench/reference/train_fashion.py does (pixels / 255, Adam 1e-3, batch
    64, seed 0) and returns PyTorch's own test accuracy and count of right answers."""
    torch.set_num_threads(2)
    xtr = torch.from_numpy(fashion("train-images-idx3-ubyte").astype(np.float32)[:, None] / 255)
    ytr = torch.from_numpy(fashion("train-labels-idx1-ubyte").astype(np.int64))
    xte = torch.from_numpy(fashion("t10k-images-idx3-ubyte").astype(np.float32)[:, None] / 255)
    yte = torch.from_numpy(fashion("t10k-labels-idx1-ubyte").astype(np.int64))
    opt, loss_fn, rng = torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss(), np.random.default_rng(0)
    model.train()
    for _ in range(epochs):
        perm = torch.from_numpy(rng.permutation(len(xtr)))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        correct = int(sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum() for i in range(0, len(xte), 1000)))
    return {"epochs": epochs, "correct": correct, "images": len(xte), "test_accuracy": correct / len(xte)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--full-resnet", action="store_true", help="write only the full-width ResNet-18 (not committed)")
    ap.add_argument("--conv-only", action="store_true", help="write only the 1-D convolution classifier, the upsampler and the op cases")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.conv_only:
        conv_fixtures(a.out)
        return
    torch.manual_seed(2)
    images = torch.randn(8, 3, 64, 64)
    if a.full_resnet:
        torch.manual_seed(3)
        model = ResNet18()
        randomize_bn(model)
        exporters(model, images, os.path.join(a.out, "resnet18_full"))
        return
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    accuracy = {}
    for name, make, epochs in [("fashion_mlp", mlp, 5), ("fashion_cnn", cnn, 3)]:
        torch.manual_seed(1)
        model = make()
        accuracy[name] = train_fashion(model, epochs)
        print(f"{name}: PyTorch test accuracy {accuracy[name]['test_accuracy']:.4f}", flush=True)
        write(model, x, os.path.join(a.out, f"{name}_torchscript.onnx"), dynamo=False)
        write(model, x, os.path.join(a.out, f"{name}_dynamo.onnx"), dynamo=True)
    with open(os.path.join(a.out, "fashion_accuracy.json"), "w") as f:
        json.dump(accuracy, f, indent=1, sort_keys=True)
    torch.manual_seed(3)
    model = ResNet18(widths=(16, 32, 64, 128))
    randomize_bn(model)
    exporters(model, images, os.path.join(a.out, "resnet18_narrow"))
    torch.manual_seed(4)
    ids = torch.randint(1, 1000, (8, 20))
    for n, length in enumerate([20, 20, 15, 9, 20, 3, 12, 18]):
        ids[n, length:] = 0                         # padding at the end, as a batch of texts has
    torch.manual_seed(5)
    exporters(GRUClassifier(), ids, os.path.join(a.out, "gru_text"))
    conv_fixtures(a.out)


def conv_fixtures(out):
    torch.manual_seed(6)
    model = audio_cnn()
    randomize_bn(model)
    exporters(model, torch.randn(8, 1, 400), os.path.join(out, "audio_conv1d"))
    torch.manual_seed(7)
    exporters(upsampler(), torch.randn(8, 4, 5, 5), os.path.join(out, "upsampler_convtranspose"))
    torch.manual_seed(8)
    exporters(pooling_options(), torch.randn(8, 3, 23, 23), os.path.join(out, "pooling_options"))
    torch.manual_seed(9)
    exporters(adaptive_pooling(), torch.randn(8, 3, 10, 14), os.path.join(out, "adaptive_pooling"))
    op_cases(os.path.join(out, "ops"))


def op_cases(folder):
    """One-node graphs, each run by onnxruntime on seeded inputs for the expected outputs."""
    import onnxruntime
    from onnx import helper, TensorProto
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(11)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.7

    def case(name, op, x, consts, outs, opset=17, out_type=None, **attrs):
        inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
        names = ["X"] + list(consts.keys()) if op not in ("GRU", "LSTM") else ["X"] + [k if k in consts else "" for k in attrs.pop("order")]
        while names and names[-1] == "":
            names.pop()
        node = helper.make_node(op, names, outs, **attrs)
        vi = [helper.make_tensor_value_info("X", helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))]
        g = helper.make_graph([node], name, vi, [helper.make_tensor_value_info(o, out_type or vi[0].type.tensor_type.elem_type, None) for o in outs], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        path = os.path.join(folder, name + ".onnx")
        onnx.save(m, path)
        got = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"X": x})
        d = os.path.join(path + ".test", "test_data_set_0")
        os.makedirs(d, exist_ok=True)
        onnx.save_tensor(numpy_helper.from_array(x, "X"), os.path.join(d, "input_0.pb"))
        for k, y in enumerate(got):
            onnx.save_tensor(numpy_helper.from_array(y, outs[k]), os.path.join(d, f"output_{k}.pb"))
        print(f"{path}: {op}, outputs {[y.shape for y in got]}")

    rnn = ["W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    T, N, I, H = 5, 3, 4, 3
    case("gru_bidirectional_lengths", "GRU", f32(T, N, I),
         {"W": f32(2, 3 * H, I), "R": f32(2, 3 * H, H), "B": f32(2, 6 * H), "sequence_lens": np.array([5, 2, 4], np.int32),
          "initial_h": f32(2, N, H)}, ["Y", "Y_h"], hidden_size=H, direction="bidirectional", order=rnn)
    case("gru_reverse_linear_before_reset", "GRU", f32(T, N, I),
         {"W": f32(1, 3 * H, I), "R": f32(1, 3 * H, H), "B": f32(1, 6 * H), "sequence_lens": np.array([5, 1, 3], np.int32)},
         ["Y", "Y_h"], hidden_size=H, direction="reverse", linear_before_reset=1, order=rnn)
    case("lstm_bidirectional_lengths", "LSTM", f32(T, N, I),
         {"W": f32(2, 4 * H, I), "R": f32(2, 4 * H, H), "B": f32(2, 8 * H), "sequence_lens": np.array([3, 5, 1], np.int32),
          "initial_h": f32(2, N, H), "initial_c": f32(2, N, H)}, ["Y", "Y_h", "Y_c"], hidden_size=H, direction="bidirectional", order=rnn)
    case("lstm_reverse_peepholes", "LSTM", f32(T, N, I),
         {"W": f32(1, 4 * H, I), "R": f32(1, 4 * H, H), "B": f32(1, 8 * H), "P": f32(1, 3 * H)},
         ["Y", "Y_h", "Y_c"], hidden_size=H, direction="reverse", order=rnn)
    i64 = lambda *v: np.array(v, np.int64)
    case("slice_flip", "Slice", f32(3, 4), {"starts": i64(-1, -1), "ends": i64(-(2 ** 63), -(2 ** 63)), "axes": i64(1, 0), "steps": i64(-1, -2)}, ["Y"])
    case("split_unequal_opset18", "Split", f32(7, 2), {}, ["A", "B", "C"], opset=18, num_outputs=3)
    case("split_sizes", "Split", f32(2, 7), {"split": i64(2, 0, 5)}, ["A", "B", "C"], axis=1)
    case("reduce_max_axes_input_opset18", "ReduceMax", f32(2, 3, 4), {"axes": i64(-1, 0)}, ["Y"], opset=18, keepdims=0)
    case("reduce_mean_axes_input_opset18", "ReduceMean", f32(2, 3, 4), {"axes": i64(1)}, ["Y"], opset=18)
    case("reduce_sum_noop", "ReduceSum", f32(2, 3), {"axes": np.zeros(0, np.int64)}, ["Y"], noop_with_empty_axes=1)
    case("layer_normalization_axis1", "LayerNormalization", f32(2, 3, 4), {"Scale": f32(3, 4), "B": f32(3, 4)}, ["Y"], axis=1, epsilon=1e-3)
    case("range_int", "Range", i64(3), {"limit": i64(-8), "delta": i64(-3)}, ["Y"])
    case("pad_constant", "Pad", f32(2, 3), {"pads": i64(1, 0, 0, 2), "value": np.array(1.5, np.float32)}, ["Y"])
    case("pad_reflect", "Pad", f32(3, 4), {"pads": i64(2, 1, 1, 3)}, ["Y"], mode="reflect")
    case("pad_edge_crop", "Pad", f32(3, 4), {"pads": i64(-1, 2, 1, -2)}, ["Y"], mode="edge")
    case("where_broadcast", "Where", np.array([[True], [False]]), {"A": f32(1, 3), "B": f32(2, 1)}, ["Y"], out_type=TensorProto.FLOAT)
    case("conv_1d_uneven_pads", "Conv", f32(2, 4, 11), {"W": f32(6, 2, 3), "B": f32(6)}, ["Y"], strides=[2], dilations=[2],
         pads=[1, 2], group=2)
    case("max_pool_1d", "MaxPool", f32(2, 3, 10), {}, ["Y"], kernel_shape=[3], strides=[2], pads=[1, 1])
    case("average_pool_1d_uneven_pads", "AveragePool", f32(2, 3, 9), {}, ["Y"], kernel_shape=[4], strides=[3], pads=[2, 1],
         count_include_pad=1)
    case("conv_transpose_uneven_pads", "ConvTranspose", f32(2, 4, 3, 4), {"W": f32(4, 3, 3, 2), "B": f32(6)}, ["Y"],
         strides=[2, 3], pads=[0, 2, 1, 0], output_padding=[1, 2], dilations=[1, 2], group=2)
    case("conv_transpose_1d_output_shape", "ConvTranspose", f32(2, 3, 5), {"W": f32(3, 2, 4)}, ["Y"], strides=[3],
         output_shape=[13])
    case("max_pool_ceil_dilated_uneven_pads", "MaxPool", f32(2, 3, 9, 8), {}, ["Y"], kernel_shape=[3, 2], strides=[2, 3],
         pads=[0, 1, 2, 1], dilations=[2, 1], ceil_mode=1)
    case("average_pool_ceil_pads_left_out", "AveragePool", f32(2, 3, 8, 7), {}, ["Y"], kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 0, 0, 2], ceil_mode=1, count_include_pad=0)
    case("average_pool_ceil_pads_counted", "AveragePool", f32(2, 3, 8, 7), {}, ["Y"], kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 0, 0, 2], ceil_mode=1, count_include_pad=1)
    case("average_pool_dilated_opset19", "AveragePool", f32(1, 2, 9, 9), {}, ["Y"], opset=19, kernel_shape=[2, 3], strides=[2, 1],
         pads=[1, 1, 1, 1], dilations=[3, 2], count_include_pad=1)
    case("average_pool_1d_ceil_pads_left_out", "AveragePool", f32(2, 3, 10), {}, ["Y"], kernel_shape=[3], strides=[2], pads=[1, 1],
         ceil_mode=1)
    case("max_pool_same_upper", "MaxPool", f32(1, 2, 7, 6), {}, ["Y"], kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")
    case("average_pool_same_lower", "AveragePool", f32(1, 2, 7, 6), {}, ["Y"], kernel_shape=[3, 4], strides=[2, 1], auto_pad="SAME_LOWER")
    case("conv_same_upper_strided", "Conv", f32(1, 2, 7, 6), {"W": f32(3, 2, 3, 4), "B": f32(3)}, ["Y"], strides=[2, 2],
         auto_pad="SAME_UPPER")
    case("global_max_pool_1d", "GlobalMaxPool", f32(2, 3, 7), {}, ["Y"])


def exporters(model, x, base):
    """Both exporters; one that fails is reported and the other still written."""
    for kind, dynamo in [("torchscript", False), ("dynamo", True)]:
        try:
            write(model, x, f"{base}_{kind}.onnx", dynamo=dynamo)
        except Exception as e:
            print(f"{base}_{kind}.onnx: the {kind} exporter failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)


if __name__ == "__main__":
    main()
