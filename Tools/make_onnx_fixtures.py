#!/usr/bin/env python3
"""Exports PyTorch models to ONNX for Strata's import tests, with inputs and PyTorch's outputs.

For each model it writes OUT/NAME.onnx and OUT/NAME.onnx.test/test_data_set_0/{input_0,output_0}.pb
(ONNX's test-data layout): 8 seeded inputs and what PyTorch computes for them. The Fashion-MNIST
MLP and CNN are the reference script's (../shared/bench/reference/train_fashion.py), seeded and
untrained (the import must reproduce any weights); each goes through both exporters of
torch.onnx: the TorchScript one (`dynamo=False, opset_version=17`) and the default dynamo one.
Weights are inline (the dynamo exporter's external-data file is folded back in for small models).

    pip install torch onnx onnxscript numpy
    python3 Tools/make_onnx_fixtures.py Tests/StrataTests/Fixtures/onnx

Commit the result; `make test` needs neither torch nor onnx.
"""
import argparse, os, sys

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
    onnx.checker.check_model(m)
    folder = os.path.join(path + ".test", "test_data_set_0")
    os.makedirs(folder, exist_ok=True)
    onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(folder, "input_0.pb"))
    onnx.save_tensor(numpy_helper.from_array(y.numpy(), "output"), os.path.join(folder, "output_0.pb"))
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{path}: opset {m.opset_import[0].version}, {os.path.getsize(path):,} bytes, ops {', '.join(ops)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    for name, make in [("fashion_mlp", mlp), ("fashion_cnn", cnn)]:
        torch.manual_seed(1)
        model = make()
        write(model, x, os.path.join(a.out, f"{name}_torchscript.onnx"), dynamo=False)
        write(model, x, os.path.join(a.out, f"{name}_dynamo.onnx"), dynamo=True)


if __name__ == "__main__":
    main()
