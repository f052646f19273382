#!/usr/bin/env python3
"""Training benchmarks, Strata beside the PyTorch reference, interleaved: Fashion-MNIST (mlp, cnn;
train_fashion.py against `strata bench train`) and face training (faces; faces_train.py against
`strata bench faces`). `gemm` adds the N=1024 GEMM on 1 and 2 threads against numpy's OpenBLAS
(gemm.py's worker, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE dropped as BENCHMARKS.md does).

Runs, for each model, REPEATS rounds of (reference, Strata) alternately, so both see the same
machine conditions, then prints best/median of every field and the ratios. Each run's line also
carries the cores' round trip before and after it (Tools/core_round_trip.c, built with gcc when it
is there): on a cloud host the same binary can train half as fast while that reads ~340 ns instead
of ~70 ns, so a round measured in such a window is told apart from the rest.

    python3 Tools/bench_train_side_by_side.py [--repeats 3] [--models gemm mlp cnn faces] [--isa avx2]

--isa avx2 holds both sides to AVX2 on an AVX-512 machine: STRATA_ISA=avx2 for Strata, and
ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2 for PyTorch
(its linear layers run MKL's sgemm, which only the last one holds); for gemm it sets
OPENBLAS_CORETYPE=Haswell, OpenBLAS's AVX2 kernel.
"""
import argparse, atexit, json, os, re, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "..", "shared", "bench", "reference")
STRATA = os.path.join(ROOT, ".build", "release", "strata")
FIELDS = [("train_samples_per_s", max), ("test_accuracy", max), ("infer_b1000_samples_per_s", max),
          ("latency_b1_ms_median", min), ("peak_rss_mib", min)]
FACE_FIELDS = [("images_per_s", max), ("loss_last50", min), ("peak_rss_mib", min)]


def round_trip_probe():
    """A function giving the cores' round trip in ns, or None where gcc or the helper is missing."""
    folder = tempfile.mkdtemp(prefix="strata-rt-")
    atexit.register(shutil.rmtree, folder, True)
    exe = os.path.join(folder, "core_round_trip")
    src = os.path.join(ROOT, "Tools", "core_round_trip.c")
    try:
        subprocess.run(["gcc", "-O2", "-o", exe, src, "-lpthread"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return lambda: None

    def probe():
        out = subprocess.run([exe], capture_output=True, text=True).stdout
        m = re.search(r"round trip (\d+) ns", out)
        return int(m.group(1)) if m else None
    return probe


def last_json(cmd, cwd, env=None):
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def gemm_rounds(repeats, isa, strata_env):
    """numpy-OpenBLAS and `strata bench gemm` at N=1024, alternately; GFLOP/s best/median per thread count."""
    runs = {"numpy": {1: [], 2: []}, "strata": {1: [], 2: []}}
    for r in range(repeats):
        for t in (1, 2):
            env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
            env.pop("OPENBLAS_CORETYPE", None); env.pop("OPENBLAS_L2_SIZE", None)
            if isa == "avx2":
                env["OPENBLAS_CORETYPE"] = "Haswell"
            d = last_json([sys.executable, "gemm.py", "--worker", "numpy", str(t)], REF, env)
            g = d["gflops"]["1024"]
            runs["numpy"][t].append(g["best"])
            print(json.dumps({"model": "gemm", "round": r + 1, "impl": "numpy", "isa": isa, "threads": t,
                              "kernel": d["kernel"], "gflops": g["best"], "foreign_cpu": g["foreign_cpu"]}), flush=True)
        d = last_json([STRATA, "bench", "gemm", "--sizes", "1024", "--json"], ROOT, strata_env)
        for x in d["results"]:
            runs["strata"][x["threads"]].append(x["gflops"])
            print(json.dumps({"model": "gemm", "round": r + 1, "impl": "strata", "isa": isa, "threads": x["threads"],
                              "kernel": d["kernel"], "gflops": x["gflops"], "foreign_cpu": x["foreign_cpu"]}), flush=True)
    summary = {impl: {f"threads_{t}": {"best": max(v), "median": statistics.median(v)} for t, v in rs.items()}
               for impl, rs in runs.items()}
    summary["ratio"] = {f"threads_{t}_{k}": round(summary["strata"][f"threads_{t}"][k] / summary["numpy"][f"threads_{t}"][k], 2)
                        for t in (1, 2) for k in ("best", "median")}
    print("gemm", json.dumps(summary["ratio"]), flush=True)
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    p.add_argument("--isa", choices=["native", "avx2"], default="native")
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    strata_env = dict(os.environ)
    if args.isa == "avx2":
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2")
        strata_env["STRATA_ISA"] = "avx2"
    round_trip = round_trip_probe()
    summary = {}
    for model in args.models:
        if model == "gemm":
            summary[model] = gemm_rounds(args.repeats, args.isa, strata_env)
            continue
        faces = model == "faces"
        fields = FACE_FIELDS if faces else FIELDS
        ref_cmd = [sys.executable, "faces_train.py"] if faces else [sys.executable, "train_fashion.py", "--worker", model]
        strata_cmd = [STRATA, "bench", "faces", "--json"] if faces else [STRATA, "bench", "train", "--model", model, "--json"]
        runs = {"torch": [], "strata": []}
        for r in range(args.repeats):
            trips = {}
            for k, cmd, cwd, e in (("torch", ref_cmd, REF, env), ("strata", strata_cmd, ROOT, strata_env)):
                before = round_trip()
                runs[k].append(last_json(cmd, cwd, e))
                trips[k] = [before, round_trip()]
            for k in ("torch", "strata"):
                d = runs[k][-1]
                print(json.dumps({"model": model, "round": r + 1, "impl": k, "isa": args.isa, "kernel": d.get("kernel"),
                                  "winograd": d.get("winograd"), **{f: d[f] for f, _ in fields},
                                  "foreign_cpu": d.get("foreign_cpu", d.get("foreign_cpu_train")),
                                  "round_trip_ns": trips[k]}), flush=True)
        summary[model] = {}
        for impl, rs in runs.items():
            summary[model][impl] = {f: {"best": pick([x[f] for x in rs]), "median": statistics.median([x[f] for x in rs])} for f, pick in fields}
        t, s = summary[model]["torch"], summary[model]["strata"]
        speed = "images_per_s" if faces else "train_samples_per_s"
        ratio = {
            "train_speed_best": round(s[speed]["best"] / t[speed]["best"], 2),
            "train_speed_median": round(s[speed]["median"] / t[speed]["median"], 2),
            "peak_rss_median": round(s["peak_rss_mib"]["median"] / t["peak_rss_mib"]["median"], 3),
        }
        if not faces:
            ratio["latency_best"] = round(s["latency_b1_ms_median"]["best"] / t["latency_b1_ms_median"]["best"], 2)
            ratio["latency_median"] = round(s["latency_b1_ms_median"]["median"] / t["latency_b1_ms_median"]["median"], 2)
        summary[model]["ratio"] = ratio
        print(model, json.dumps(ratio), flush=True)
    print(json.dumps({"benchmark": "training_side_by_side", "isa": args.isa, "summary": summary}))


if __name__ == "__main__":
    main()
