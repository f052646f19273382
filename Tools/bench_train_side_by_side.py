#!/usr/bin/env python3
"""Fashion-MNIST training benchmark, Strata beside the PyTorch reference, interleaved.

Runs, for each model, REPEATS rounds of (reference worker, `strata bench train`) alternately, so
both see the same machine conditions, then prints best/median of every field and the ratios.

    python3 Tools/bench_train_side_by_side.py [--repeats 3] [--models mlp cnn] [--isa avx2]

--isa avx2 holds both sides to AVX2 on an AVX-512 machine: STRATA_ISA=avx2 for Strata, and
ATEN_CPU_CAPABILITY=avx2 with ONEDNN_MAX_CPU_ISA=AVX2 for PyTorch.
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "..", "shared", "bench", "reference")
STRATA = os.path.join(ROOT, ".build", "release", "strata")
FIELDS = [("train_samples_per_s", max), ("test_accuracy", max), ("infer_b1000_samples_per_s", max),
          ("latency_b1_ms_median", min), ("peak_rss_mib", min)]


def last_json(cmd, cwd, env=None):
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    p.add_argument("--isa", choices=["native", "avx2"], default="native")
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    strata_env = dict(os.environ)
    if args.isa == "avx2":
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
        strata_env["STRATA_ISA"] = "avx2"
    summary = {}
    for model in args.models:
        runs = {"torch": [], "strata": []}
        for r in range(args.repeats):
            runs["torch"].append(last_json([sys.executable, "train_fashion.py", "--worker", model], REF, env))
            runs["strata"].append(last_json([STRATA, "bench", "train", "--model", model, "--json"], ROOT, strata_env))
            for k in ("torch", "strata"):
                d = runs[k][-1]
                print(json.dumps({"model": model, "round": r + 1, "impl": k, "isa": args.isa, "kernel": d.get("kernel"), **{f: d[f] for f, _ in FIELDS},
                                  "foreign_cpu_train": d.get("foreign_cpu_train")}), flush=True)
        summary[model] = {}
        for impl, rs in runs.items():
            summary[model][impl] = {f: {"best": pick([x[f] for x in rs]), "median": statistics.median([x[f] for x in rs])} for f, pick in FIELDS}
        t, s = summary[model]["torch"], summary[model]["strata"]
        summary[model]["ratio"] = {
            "train_speed_best": round(s["train_samples_per_s"]["best"] / t["train_samples_per_s"]["best"], 2),
            "train_speed_median": round(s["train_samples_per_s"]["median"] / t["train_samples_per_s"]["median"], 2),
            "latency_best": round(s["latency_b1_ms_median"]["best"] / t["latency_b1_ms_median"]["best"], 2),
            "latency_median": round(s["latency_b1_ms_median"]["median"] / t["latency_b1_ms_median"]["median"], 2),
            "peak_rss_median": round(s["peak_rss_mib"]["median"] / t["peak_rss_mib"]["median"], 3),
        }
        print(model, json.dumps(summary[model]["ratio"]), flush=True)
    print(json.dumps({"benchmark": "fashion_mnist_side_by_side", "summary": summary}))


if __name__ == "__main__":
    main()
