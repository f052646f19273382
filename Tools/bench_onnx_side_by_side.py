#!/usr/bin/env python3
"""Inference speed of Strata against onnxruntime on the same models, interleaved.

For each model M (a Strata model file M.safetensors and its export M.onnx, made by
`strata export --model M.safetensors --format onnx --out M.onnx`) it runs, --repeats times in
turn: `strata bench infer --model M.safetensors` (Strata's own layers), `strata bench infer
--model M.onnx` (the ONNX graph on Strata's importer) and `Tools/bench_onnxruntime.py --model
M.onnx` (onnxruntime, 2 threads), each under `cpulock` when it exists (unless STRATA_BENCH_LOCKED is set:
the caller holds it for the whole run), and prints best and median
batch-1 latency and batch-64 throughput of each, with the ratios to onnxruntime.

    python3 Tools/bench_onnx_side_by_side.py /tmp/fashion-cnn /tmp/faces-lfw --repeats 3
"""
import argparse, json, os, shutil, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    lock = ["cpulock"] if shutil.which("cpulock") and not os.environ.get("STRATA_BENCH_LOCKED") else []
    out = subprocess.run(lock + cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="paths without the extension")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--strata", default=os.path.join(ROOT, ".build/release/strata"))
    a = ap.parse_args()
    for m in a.models:
        runs = {"strata": [], "strata-onnx": [], "onnxruntime": []}
        for _ in range(a.repeats):
            runs["strata"].append(run([a.strata, "bench", "infer", "--model", m + ".safetensors", "--calls", str(a.calls)]))
            runs["strata-onnx"].append(run([a.strata, "bench", "infer", "--model", m + ".onnx", "--calls", str(a.calls)]))
            runs["onnxruntime"].append(run([sys.executable, os.path.join(ROOT, "Tools/bench_onnxruntime.py"), "--model", m + ".onnx", "--calls", str(a.calls)]))
        summary = {}
        for k, rs in runs.items():
            lat = [r["latency_b1_ms_median"] for r in rs]
            thr = [r["throughput_samples_per_s"] for r in rs]
            summary[k] = {"latency_ms": (min(lat), statistics.median(lat)), "throughput": (max(thr), statistics.median(thr)),
                          "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rs)}
        ort = summary["onnxruntime"]
        print(f"{os.path.basename(m)} (best / median of {a.repeats}, interleaved; kernel {runs['strata'][0].get('kernel')}):")
        for k, s in summary.items():
            print(f"  {k:12s} latency b1 {s['latency_ms'][0]:.4f} / {s['latency_ms'][1]:.4f} ms "
                  f"({s['latency_ms'][0] / ort['latency_ms'][0]:.2f}x, {s['latency_ms'][1] / ort['latency_ms'][1]:.2f}x of onnxruntime), "
                  f"b64 {s['throughput'][0]:.0f} / {s['throughput'][1]:.0f} samples/s "
                  f"({s['throughput'][0] / ort['throughput'][0]:.2f}x, {s['throughput'][1] / ort['throughput'][1]:.2f}x), "
                  f"peak RSS {s['peak_rss_mib']:.0f} MiB", flush=True)
        print(json.dumps({"model": m, "summary": summary}))


if __name__ == "__main__":
    main()
