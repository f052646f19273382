#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/seeds/<target>/: small valid files of every kind the fuzz
targets read (docs/FUZZING.md). The seeds are kept in the repository, so this only needs running
again to change them. JPEG seeds need libjpeg-turbo's `cjpeg` (Debian: libjpeg-turbo-progs), WebP
seeds Pillow, HEIC and AVIF seeds libheif's `heif-enc` (Debian: libheif-examples); the
gallery seeds need a built `strata` (they enrol one synthetic photo with the built-in model).
"""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- safetensors -------------------------------------------------------------------------------

def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, blobs, off = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def ramp(n, scale=0.1):
    return [((i * 7) % 11 - 5) * scale for i in range(n)]


def model_file(architecture, weights, input_shape, classes, extra=None):
    meta = {
        "format": "strata",
        "architecture": json.dumps(architecture, separators=(",", ":"), sort_keys=True),
        "class_names": json.dumps(classes),
        "input_shape": json.dumps(input_shape),
        "normalization": '{"mean":[0],"perImage":false,"scale":0.003921569,"std":[1]}',
        "history": '[{"epoch":1,"learningRate":0.001,"samplesPerSecond":100,"seconds":1,"trainAccuracy":0.5,"trainLoss":0.7}]',
    }
    meta.update(extra or {})
    tensors = []
    for name, shape in sorted(weights.items()):
        n = 1
        for s in shape:
            n *= s
        tensors.append((name, "F32", shape, f32(ramp(n))))
    return safetensors(tensors, meta), meta


def conv(i, o, k=3, p=1, s=1):
    return {"type": "Conv2D", "in": i, "out": o, "kernel": [k, k], "padding": [p, p], "stride": [s, s],
            "dilation": [1, 1], "groups": 1, "bias": True}


def linear(i, o):
    return {"type": "Linear", "in": i, "out": o, "bias": True}


def maxpool(k):
    return {"type": "MaxPool2D", "kernel": k, "padding": [0, 0], "stride": k}


MODELS = {
    "mlp": ({"type": "Sequential", "layers": [{"type": "Flatten"}, linear(4, 3), {"type": "ReLU"}, linear(3, 2)]},
            {"1.weight": [3, 4], "1.bias": [3], "3.weight": [2, 3], "3.bias": [2]}, [1, 2, 2], ["no", "yes"], None),
    "cnn": ({"type": "Sequential", "layers": [conv(1, 2), {"type": "BatchNorm2d", "features": 2, "eps": 1e-5, "momentum": 0.1},
                                               {"type": "ReLU"}, maxpool([2, 2]), {"type": "Flatten"},
                                               {"type": "Dropout", "p": 0.3}, linear(8, 3)]},
            {"0.weight": [2, 1, 3, 3], "0.bias": [2], "1.weight": [2], "1.bias": [2], "1.running_mean": [2],
             "1.running_var": [2], "6.weight": [3, 8], "6.bias": [3]}, [1, 4, 4], ["a", "b", "c"], None),
    "gcn": ({"type": "GCN", "features": 3, "hidden": 2, "classes": 2, "dropout": 0.5},
            {"conv1.weight": [3, 2], "conv1.bias": [2], "conv2.weight": [2, 2], "conv2.bias": [2]}, [3], ["x", "y"], None),
    "audio": ({"type": "Sequential", "layers": [maxpool([8, 10]), {"type": "Flatten"}, linear(50, 2)]},
              {"2.weight": [2, 50], "2.bias": [2]}, [1, 40, 100], ["0", "1"],
              {"audio_features": json.dumps({"sampleRate": 8000, "bands": 40, "hop": 80, "length": 8192, "nFFT": 256,
                                             "bandMean": [-10.0] * 40, "bandStd": [5.0] * 40}, separators=(",", ":"))}),
    "conv1d": ({"type": "Sequential", "layers": [{"type": "Conv1D", "in": 1, "out": 2, "kernel": 3, "padding": 1, "stride": 1,
                                                  "dilation": 1, "groups": 1, "bias": True}, {"type": "ReLU"},
                                                 {"type": "MaxPool1D", "kernel": 2, "stride": 2, "padding": 0},
                                                 {"type": "AvgPool1D", "kernel": 2, "stride": 1, "padding": 1},
                                                 {"type": "GlobalAvgPool"}, linear(2, 2)]},
               {"0.weight": [2, 1, 3], "0.bias": [2], "5.weight": [2, 2], "5.bias": [2]}, [1, 8], ["low", "high"], None),
    "pooling": ({"type": "Sequential", "layers": [{"type": "MaxPool2D", "kernel": [3, 3], "stride": [2, 2], "padding": [0, 0],
                                                   "ceil_mode": True},
                                                  {"type": "AvgPool2D", "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1],
                                                   "ceil_mode": True, "count_include_pad": False},
                                                  {"type": "MaxPool2D", "kernel": [2, 2], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 2]},
                                                  {"type": "AdaptiveAvgPool2D", "size": [1, 2]}, {"type": "Flatten"}, linear(2, 2)]},
                {"5.weight": [2, 2], "5.bias": [2]}, [1, 10, 12], ["a", "b"], None),
    "adaptive": ({"type": "Sequential", "layers": [{"type": "AdaptiveMaxPool1D", "size": 3}, {"type": "AdaptiveAvgPool1D", "size": 2},
                                                   {"type": "GlobalMaxPool"}, linear(1, 2)]},
                 {"3.weight": [2, 1], "3.bias": [2]}, [1, 8], ["a", "b"], None),
    "upsample": ({"type": "Sequential", "layers": [{"type": "ConvTranspose2D", "in": 1, "out": 2, "kernel": [2, 2], "stride": [2, 2],
                                                    "padding": [0, 0], "output_padding": [1, 1], "dilation": [1, 1], "groups": 1,
                                                    "bias": True}, {"type": "ReLU"}, maxpool([2, 2]), {"type": "Flatten"}, linear(8, 2)]},
                 {"0.weight": [1, 2, 2, 2], "0.bias": [2], "4.weight": [2, 8], "4.bias": [2]}, [1, 2, 2], ["a", "b"], None),
    "text-gru": ({"type": "TextClassifier", "kind": "gru", "vocabulary": 6, "dim": 2, "classes": 2, "max_length": 8},
                 {"embedding.weight": [6, 2], "rnn.weight_ih_l0": [6, 2], "rnn.weight_hh_l0": [6, 2], "rnn.bias_ih_l0": [6],
                  "rnn.bias_hh_l0": [6], "fc.weight": [2, 2], "fc.bias": [2]}, [8], ["negative", "positive"],
                 {"tokenizer": json.dumps({"words": {"_0": {"vocabulary": ["<pad>", "<unk>", "good", "bad", "film", "phone"]}}})}),
}


def seeds_safetensors():
    put("safetensors", "f32.safetensors", safetensors([("w", "F32", [2, 3], f32(ramp(6))), ("b", "F32", [3], f32([1, 2, 3]))],
                                                       {"format": "pt"}))
    put("safetensors", "dtypes.safetensors", safetensors([
        ("h", "F16", [2], struct.pack("<2H", 0x3C00, 0xC000)), ("bf", "BF16", [2], struct.pack("<2H", 0x3F80, 0x4000)),
        ("d", "F64", [1], struct.pack("<d", 0.5)), ("l", "I64", [2], struct.pack("<2q", -1, 7)),
        ("i", "I32", [1], struct.pack("<i", 3)), ("s", "I16", [1], struct.pack("<h", -3)),
        ("c", "I8", [2], b"\x01\xff"), ("u", "U8", [2], b"\x00\xff"), ("z", "BOOL", [1], b"\x01"),
        ("e", "F32", [0, 4], b""), ("scalar", "F32", [], f32([2.5]))]))
    put("safetensors", "empty.safetensors", safetensors([], {}))
    for name, (arch, weights, shape, classes, extra) in MODELS.items():
        data, meta = model_file(arch, weights, shape, classes, extra)
        put("safetensors", name + ".safetensors", data)
        put("model", name + ".safetensors", data)
        put("metadata", name + ".txt", "\n".join(meta[k] for k in ["architecture", "input_shape", "class_names", "normalization", "history"]))
    # A weights-only file (as PyTorch writes them) and a metadata line set without the optional keys.
    put("model", "weights-only.safetensors", safetensors([("1.weight", "F32", [3, 4], f32(ramp(12)))], {"format": "pt"}))
    put("metadata", "facenet.txt", json.dumps({"type": "FaceNet", "channels": 1, "input": [16, 16], "widths": [2, 4], "blocks": [],
                                               "embedding": 4, "classes": 3, "loss": "softmax", "s": 16, "m": 0.2}) + "\n[1,16,16]\n[\"a\",\"b\",\"c\"]")
    put("metadata", "residual.txt", json.dumps({"type": "Sequential", "layers": [
        {"type": "Residual", "body": {"type": "Sequential", "layers": [linear(4, 4), {"type": "Tanh"}]}},
        {"type": "LayerNorm", "shape": [4], "eps": 1e-5}, {"type": "Softmax", "axis": 1}, linear(4, 2)]}) + "\n[4]\n[\"p\",\"q\"]")


# --- images ------------------------------------------------------------------------------------

def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, color_type, depth, rows, extra=b""):
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
            + extra + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_adam7(width, height, pixels):
    """An interlaced grey+alpha PNG: the seven Adam7 passes, each row with filter byte 0."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, width, dx), range(y0, height, dy)
        if not xs or not ys:
            continue
        for y in ys:
            raw += b"\x00" + b"".join(bytes(pixels[y][x]) for x in xs)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 1))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def cjpeg(ppm, options):
    """A JPEG from libjpeg-turbo's cjpeg (Debian: libjpeg-turbo-progs)."""
    return subprocess.run(["cjpeg"] + options, input=ppm, check=True, capture_output=True).stdout


def with_exif_orientation(jpeg, orientation):
    """The JPEG with an APP1 EXIF block after SOI holding only the Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def seeds_images():
    put("png", "grey-4x3.png", png(4, 3, 0, 8, [bytes([x * 60 + y * 10 for x in range(4)]) for y in range(3)]))
    put("png", "rgb-3x2.png", png(3, 2, 2, 8, [bytes(range(y * 9, y * 9 + 9)) for y in range(2)]))
    put("png", "rgba-2x2.png", png(2, 2, 6, 8, [bytes([255, 0, 0, 128, 0, 255, 0, 255]), bytes([0, 0, 255, 0, 9, 9, 9, 9])]))
    put("png", "grey16-2x2.png", png(2, 2, 0, 16, [b"\x00\x10\xff\xf0", b"\x80\x00\x12\x34"]))
    put("png", "palette-4x2.png", png(4, 2, 3, 2, [bytes([0b00011011]), bytes([0b11100100])],
                                     extra=png_chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]))
                                     + png_chunk(b"tRNS", bytes([255, 128]))))
    put("png", "grey1-8x2.png", png(8, 2, 0, 1, [b"\xa5", b"\x5a"]))
    put("png", "interlaced-5x5.png", png_adam7(5, 5, [[(x * 40 + y, 255 - 9 * y) for x in range(5)] for y in range(5)]))
    rgb = b"".join(bytes([x * 30, y * 40, 255 - x * 30]) for y in range(6) for x in range(8))
    put("jpeg", "rgb-8x6.jpg", cjpeg(b"P6 8 6 255\n" + rgb, ["-quality", "80"]))
    grey = bytes((x * 28 + y * 9) % 256 for y in range(7) for x in range(9))
    put("jpeg", "grey-9x7.jpg", cjpeg(b"P5 9 7 255\n" + grey, ["-quality", "70"]))
    big = b"".join(bytes([(x * y) % 256, (x * 16) % 256, (y * 16) % 256]) for y in range(16) for x in range(16))
    put("jpeg", "progressive-16x16.jpg", cjpeg(b"P6 16 16 255\n" + big, ["-progressive", "-quality", "60"]))
    put("jpeg", "subsampled-16x16.jpg", cjpeg(b"P6 16 16 255\n" + big, ["-sample", "2x2", "-optimize", "-restart", "1"]))
    put("jpeg", "orient6-8x6.jpg", with_exif_orientation(cjpeg(b"P6 8 6 255\n" + rgb, ["-quality", "75"]), 6))
    put("jpeg", "arithmetic-9x7.jpg", cjpeg(b"P5 9 7 255\n" + grey, ["-arithmetic"]))
    put("pgm", "p5-4x3.pgm", b"P5\n4 3\n255\n" + bytes(range(0, 240, 20)))
    put("pgm", "p2-3x2.pgm", "P2\n# a comment\n3 2\n15\n0 5 10\n15 7 3\n")
    put("pgm", "p6-2x2.ppm", b"P6 2 2 255\n" + bytes(range(12)))
    put("pgm", "p3-2x1.ppm", "P3\n2 1\n255\n255 0 0  0 0 255\n")
    put("pgm", "p5-16bit-2x1.pgm", b"P5\n2 1\n65535\n\x00\x10\xff\xf0")


def seeds_photos():
    """WebP (Pillow's libwebp) and HEIC / AVIF (heif-enc) seeds of a 16x16 RGB picture."""
    import io
    from PIL import Image
    rgb16 = b"".join(bytes([(x * y) % 256, (x * 16) % 256, (y * 16) % 256]) for y in range(16) for x in range(16))
    pic = Image.frombytes("RGB", (16, 16), rgb16)

    def webp(img, **options):
        out = io.BytesIO()
        img.save(out, "WEBP", **options)
        return out.getvalue()
    put("webp", "lossy-16x16.webp", webp(pic, quality=60))
    put("webp", "lossless-16x16.webp", webp(pic, lossless=True))
    alpha = pic.convert("RGBA")
    alpha.putalpha(Image.frombytes("L", (16, 16), bytes(range(0, 256, 1))))
    put("webp", "alpha-16x16.webp", webp(alpha, quality=50))
    put("webp", "exif-16x16.webp", webp(pic, quality=50, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"))
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "pic.png")
        pic.save(src)
        for name, options in [("q50-16x16.heic", ["-q", "50"]), ("lossless-16x16.heic", ["-L"]), ("q50-16x16.avif", ["-A", "-q", "50"])]:
            out = os.path.join(d, name)
            subprocess.run(["heif-enc"] + options + ["-o", out, src], check=True, capture_output=True)
            with open(out, "rb") as fh:
                put("heic", name, fh.read())


# --- recordings, arrays, compressed files ------------------------------------------------------

def wav(samples, channels=1, rate=8000, extensible=False, extra=b""):
    data = struct.pack("<%dh" % len(samples), *samples)
    if extensible:
        fmt = struct.pack("<HHIIHHHHIH14s", 0xFFFE, channels, rate, rate * 2 * channels, 2 * channels, 16, 22, 16, 0, 1,
                          b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71")
    else:
        fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def seeds_data():
    tone = [int(8000 * ((i * 37) % 64 - 32) / 32) for i in range(300)]
    put("wav", "mono-8k.wav", wav(tone))
    put("wav", "stereo-16k.wav", wav([v for t in tone[:280] for v in (t, -t)], channels=2, rate=16000))
    put("wav", "extensible.wav", wav(tone[:260], extensible=True))
    put("wav", "list-chunk.wav", wav(tone[:270], extra=b"LIST" + struct.pack("<I", 10) + b"INFOISFT\x00\x00"))
    put("wav", "short.wav", wav(tone[:5]))
    put("idx", "labels.idx1", b"\x00\x00\x08\x01" + struct.pack(">I", 6) + bytes([0, 1, 2, 9, 5, 3]))
    put("idx", "images.idx3", b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 2) + bytes(range(12)))
    put("idx", "images.idx3.gz", gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">III", 1, 2, 2) + bytes([1, 2, 3, 4]), mtime=0))
    put("idx", "four-dims.idx4", b"\x00\x00\x08\x04" + struct.pack(">IIII", 1, 2, 1, 2) + bytes([7, 8, 9, 10]))
    put("gzip", "text.gz", gzip.compress(b"hello gzip\n" * 3, mtime=0))
    put("gzip", "two-members.gz", gzip.compress(b"first\n", mtime=0) + gzip.compress(b"second\n", mtime=0))
    put("gzip", "stored.gz", gzip.compress(bytes(range(64)), compresslevel=0, mtime=0))
    put("gzip", "plain.txt", "not compressed\n")
    put("gzip", "empty.gz", gzip.compress(b"", mtime=0))


# --- text formats ------------------------------------------------------------------------------

def seeds_text():
    put("text", "sms.txt", "ham\tOk lar... Joking wif u oni...\nspam\tFREE entry in 2 a wkly comp to win\nham\tSee you at 5\n")
    put("text", "sms-crlf.txt", "ham\tGo until jurong point\r\nspam\tWINNER!! claim your prize\r\n")
    put("text", "sentiment.txt", "So there is no way for me to plug it in here.\t0\nGood case, Excellent value.\t1\n\nGreat for the jawbone.\t1\n")
    put("text", "sentiment-crlf.txt", "Not worth it.\t0\r\nLoved it\t1\r\n")
    put("text", "unicode.txt", "ham\tcaf\u00e9 \u00fcber na\u00efve \U0001F600\nspam\t\u00a3100 cash\n")
    put("pairs", "view1.txt", "2\nAlice\t1\t2\nBob\t1\t3\nAlice\t1\tBob\t2\nCarol\t2\tDan\t1\n")
    put("pairs", "view2.txt", "2 1\nAlice\t1\t2\nAlice\t1\tBob\t1\nBob\t2\t3\nCarol\t1\tBob\t4\n")
    put("pairs", "crlf-spaces.txt", "1\r\nEve 1 2\r\nEve 1 Fay 1\r\n")
    put("cora", "small.txt", "31336\t0\t1\t0\tNeural_Networks\n1061127\t1\t0\t1\tRule_Learning\n1106406\t0\t0\t0\tTheory\n"
                             "\x0031336\t1061127\n1106406\t31336\n1106406 1106406\n")
    put("cora", "no-cites.txt", "a\t1\t0\tX\nb\t0\t1\tY\n")


def seeds_gallery():
    strata = os.environ.get("STRATA", ".build/release/strata")
    with tempfile.TemporaryDirectory() as tmp:
        photo, gallery = os.path.join(tmp, "face.pgm"), os.path.join(tmp, "gallery.json")
        with open(photo, "wb") as f:   # a 64x64 radial gradient: no real face, so --no-detect
            f.write(b"P5 64 64 255\n" + bytes(max(0, 255 - 8 * int(((x - 32) ** 2 + (y - 32) ** 2) ** 0.5))
                                                for y in range(64) for x in range(64)))
        subprocess.run([strata, "faces", "enroll", "--no-detect", "--gallery", gallery, "--name", "Ada", photo],
                       check=True, stdout=subprocess.DEVNULL)
        g = json.load(open(gallery))
    # Three decimals keep the seed small; values stay finite and the length stays the model's.
    for p in g["people"]:
        p["embeddings"] = [[round(v, 3) for v in e] for e in p["embeddings"]]
    put("gallery", "one-person.json", json.dumps(g, separators=(",", ":")))
    two = dict(g, people=g["people"] + [{"name": "Bo", "embeddings": [[-v for v in g["people"][0]["embeddings"][0]]]}])
    put("gallery", "two-people.json", json.dumps(two, separators=(",", ":")))
    put("gallery", "empty.json", json.dumps(dict(g, people=[]), separators=(",", ":")))


def seeds_onnx():
    """Tiny graphs (Gemm, Relu, Softmax; Conv, MaxPool, Reshape, Concat; 1-D Conv and pooling;
    ConvTranspose; pooling in ceil mode, dilated, with auto_pad, and global max pooling); needs `pip install onnx`."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    def save(name, nodes, inits, shape, out):
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + shape)],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["N"] + out)], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        put("onnx", name, m.SerializeToString())

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(3, np.float32), "b")
    save("gemm.onnx", [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1), helper.make_node("Relu", ["y"], ["z"]),
                       helper.make_node("Softmax", ["z"], ["s"], axis=-1)], [w, b], [4], [3])
    cw = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "cw")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    save("conv.onnx", [helper.make_node("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1]),
                       helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                       helper.make_node("Reshape", ["p", "shape"], ["r"]), helper.make_node("Concat", ["r", "r"], ["o"], axis=1)],
         [cw, shape], [1, 4, 4], [16])
    # 1-D Conv and pooling, and a transposed convolution with uneven pads and an output padding.
    cw1 = numpy_helper.from_array(rng.standard_normal((3, 2, 3)).astype(np.float32), "cw1")
    save("conv1d.onnx", [helper.make_node("Conv", ["x", "cw1"], ["c"], pads=[1, 2], strides=[2]),
                         helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2], strides=[1], pads=[1, 0]),
                         helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2], count_include_pad=1, pads=[1, 1])],
         [cw1], [2, 8], [3, 7])
    tw = numpy_helper.from_array(rng.standard_normal((1, 2, 3, 3)).astype(np.float32), "tw")
    save("convtranspose.onnx", [helper.make_node("ConvTranspose", ["x", "tw"], ["t"], strides=[2, 2], pads=[1, 0, 0, 1],
                                                 output_padding=[1, 1])], [tw], [1, 4, 4], [2, 9, 9])
    save("pooling.onnx", [helper.make_node("Conv", ["x", "cw"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
                          helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[3, 2], strides=[2, 1], pads=[0, 1, 2, 1],
                                           dilations=[2, 1], ceil_mode=1),
                          helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], auto_pad="SAME_LOWER", ceil_mode=1),
                          helper.make_node("GlobalMaxPool", ["a"], ["g"])],
         [cw], [1, 7, 6], [2, 1, 1])


if __name__ == "__main__":
    only = set(sys.argv[1:])
    for name, fn in [("safetensors", seeds_safetensors), ("images", seeds_images), ("photos", seeds_photos), ("data", seeds_data),
                     ("text", seeds_text), ("gallery", seeds_gallery), ("onnx", seeds_onnx)]:
        if not only or name in only:
            fn()
