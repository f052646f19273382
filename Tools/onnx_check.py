#!/usr/bin/env python3
"""Runs ONNX files Strata exported in onnxruntime and compares with Strata's own outputs.

`strata export --model M --format onnx --out M.onnx --test-data 100` writes the model and, under
M.onnx.test/test_data_set_0, 100 seeded inputs and Strata's outputs for them (ONNX's test-data
layout). This script checks each file with `onnx.checker`, runs the inputs through onnxruntime
(CPU, 2 threads) and prints the largest absolute difference from Strata's outputs; it exits 1
when one exceeds --tolerance (default 1e-4, issue 18's bar).

    pip install onnx onnxruntime numpy
    python3 Tools/onnx_check.py fashion-cnn.onnx fashion-mlp.onnx
"""
import argparse, os, sys

import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime as ort


def check(path, tolerance):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    folder = path + ".test/test_data_set_0"
    xs = []
    while os.path.exists(os.path.join(folder, f"input_{len(xs)}.pb")):
        xs.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, f"input_{len(xs)}.pb"))))
    want = numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, "output_0.pb")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, dict(zip(names, xs)))[0]
    diff = float(np.abs(got - want).max())
    x = xs[0]
    if len(xs) == 1:
        # One input at a time too: the batch dimension is symbolic.
        one = np.concatenate([sess.run(None, {names[0]: x[i:i + 1]})[0] for i in range(min(len(x), 8))])
        diff1 = float(np.abs(one - want[:len(one)]).max())
    else:
        diff1 = 0.0   # a graph over all nodes (GCN): no per-example run
    ops = sorted({n.op_type for n in model.graph.node})
    meta = {p.key: p.value for p in model.metadata_props}
    ok = got.shape == want.shape and max(diff, diff1) <= tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {path}: {len(x)} inputs {', '.join(f'{list(t.shape[1:])} {t.dtype}' for t in xs)} -> {list(got.shape[1:])}, "
          f"max |onnxruntime - Strata| {diff:.2e} (batch), {diff1:.2e} (one at a time); opset "
          f"{model.opset_import[0].version}; ops {', '.join(ops)}; classes {meta.get('strata.class_names', '?')[:60]}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    results = [check(m, a.tolerance) for m in a.models]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
