#!/usr/bin/env python3
"""./lab bench: runs the Google Benchmark suite and the PyTorch Python peers side by side, writes
build/bench/results.json (a list of {"name", "value", "unit", "ratio", "target"}) and prints one
table. "ratio" is ours over the peer's for comparisons (null otherwise); "target" is the ratio to
reach for comparisons, or the absolute value to reach (in "unit") for absolute targets; for the
bounds of TARGET_RATIO, "ratio" is the value over its bound (met at <= 1).
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# Benchmarks with an absolute target: name -> (counter, unit, target).
ABSOLUTE = {
    name: ("samples_per_s", "samples/s", 150.0)
    for name in ["trainStep/msnet_tiny_msconv_official_b64",
                 "trainStep/msnet_tiny_msconv_official_b64_nhwc",
                 "trainStep/iresnet_tiny_b64", "trainStep/iresnet_tiny_b64_nhwc"]
}
ABSOLUTE["loaderJpeg/2"] = ("images_per_s", "images/s", 2500.0)
ABSOLUTE["synthGenerate/2"] = ("images_per_s", "images/s", 2000.0)
# Benchmarks run in a process of their own (they report the process's peak memory), each with
# counters whose target is an upper bound: name -> [(counter, unit, at most)].
ALONE = {
    "ijbcScale": [("seconds", "s", 3.0), ("peak_rss_mib", "MiB", 2048.0)],
    "trainMemory": [("peak_rss_mib", "MiB", None)],
}
STAGES = [1, 2, 3, 4]
# Benchmarks whose counter must stay at or below a bound: name -> (counter, unit, at most).
AT_MOST = {"gradcamTinyModels": ("real_time", "ms", 250.0)}  # Unit(kMillisecond)
# Bounded benchmarks reported with their ratio to the bound (value / target, met at <= 1):
# name -> [(counter, unit, at most or None, label)].
TARGET_RATIO = {"ijbcFailures": [
    ("seconds", "s", 1.0, "ijbcFailures: top 100 failures of 15.7 M pairs at FAR 1e-4, one model"),
    ("two_models_seconds", "s", None, "  the same, disagreements of two models")]}
# Comparisons with the PyTorch peer: our benchmark -> (peer script args, counter, unit, target ratio).
PEERS = {
    "trainStep/msnet_tiny_msconv_official_b64": (["train_step.py", "msnet-tiny", "64", "3"],
                                                 "samples_per_s", "samples/s", None),
    "trainStep/msnet50_msconv_official_b16": (["train_step.py", "msnet50", "16", "10"],
                                              "samples_per_s", "samples/s", 1.5),
}


# Benchmarks run as interleaved repetitions (see main).
INTERLEAVED = ["^fusionStage/"]


def listed(build, regex):
    """The C++ benchmarks `regex` selects, by name (what --benchmark_filter would run)."""
    r = subprocess.run([os.path.join(build, "bin", "msconv_bench"), "--benchmark_list_tests",
                        "--benchmark_filter=" + regex], check=True, capture_output=True, text=True)
    return [base_name(n) for n in r.stdout.split()]


def run_cpp(build, threads, extra):
    out = os.path.join(build, "bench", "cpp.json")
    cmd = [os.path.join(build, "bin", "msconv_bench"), "--benchmark_out=" + out,
           "--benchmark_out_format=json"] + extra
    env = dict(os.environ, MSCONV_THREADS=str(threads))
    if os.path.exists(out):
        os.remove(out)
    subprocess.run(cmd, check=True, env=env)
    if not os.path.exists(out) or os.path.getsize(out) == 0:
        return []  # the filter matched no C++ benchmark
    with open(out) as f:
        return json.load(f)["benchmarks"]


# msconv keeps freed memory in the process (msconv::keepFreedMemory); the same glibc setting,
# given to the peer through the environment, shows how much of the ratio that alone explains.
# msconv also runs OpenBLAS single-threaded (msconv::setThreads); the tuned peer gets that too.
KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
              "OPENBLAS_NUM_THREADS": "1"}


def run_peer(args, threads, env=None):
    script, *rest = args
    r = subprocess.run([PEER_PYTHON, os.path.join(HERE, "peers", script), *rest, str(threads)],
                       check=True, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    return json.loads(r.stdout.strip().splitlines()[-1])


def base_name(name):
    return name.split("/min_time")[0].split("/iterations:")[0].split("/real_time")[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.build, "bench"), exist_ok=True)
    results = []
    alone = {}
    for name, counters in ALONE.items():
        if args.filter and args.filter not in name:
            continue
        for b in run_cpp(args.build, args.threads, ["--benchmark_filter=^" + name + "(/|$)"]):
            alone[name] = b
            for counter, unit, most in counters:
                results.append({"name": name + " " + counter, "value": b[counter], "unit": unit,
                                "ratio": None, "target": most, "at_most": True})
    by_name = {}
    peer_runs = {}
    extra = ["--benchmark_filter=" + (args.filter or "-" + "|".join(list(ALONE) + INTERLEAVED))]
    # Ratios of close figures on this shared machine drift with the order the benchmarks run in:
    # the INTERLEAVED ones run five times each, in random interleaved order, and report medians
    # (and not also in the plain pass).
    selected = listed(args.build, args.filter or ".")
    inter = sorted({n for n in selected if any(re.match(r, n) for r in INTERLEAVED)})
    plain = not args.filter or (not any(args.filter in n for n in ALONE)
                                and len(inter) < len(set(selected)))
    rest = [b for b in (run_cpp(args.build, args.threads, extra) if plain else [])
            if base_name(b["name"]) not in inter]
    if inter:
        rest += [b for b in run_cpp(args.build, args.threads,
                                    ["--benchmark_filter=^(" + "|".join(inter) + ")(/|$)",
                                     "--benchmark_repetitions=5",
                                     "--benchmark_enable_random_interleaving=true",
                                     "--benchmark_report_aggregates_only=true"])
                 if b.get("aggregate_name") == "median"]
    for b in rest:
        name = base_name(b["name"])
        by_name[name] = b
        if name.startswith(("fusionStage/", "msconvOp/", "convPeak", "embedThroughput/",
                            "stepProfile/", "embedProfile/", "groupConv/", "groupConvForward/", "bnPrelu/", "bnPreluTrainStep")):
            continue  # reported below, as comparisons
        if name in PEERS:
            peer_args, counter, unit, target = PEERS[name]
            ours = b[counter]
            peer_out = run_peer(peer_args, args.threads)
            peer_runs[name] = peer_out
            peer = peer_out[counter]
            results.append({"name": name + " (PyTorch Python peer)", "value": peer, "unit": unit,
                            "ratio": None, "target": None})
            results.append({"name": name + " vs PyTorch", "value": ours, "unit": unit,
                            "ratio": ours / peer, "target": target})
            tuned = run_peer(peer_args, args.threads, KEEP_FREED)[counter]
            results.append({"name": name + " (peer with the same glibc and BLAS settings)", "value": tuned,
                            "unit": unit, "ratio": None, "target": None})
            results.append({"name": name + " vs that peer", "value": ours, "unit": unit,
                            "ratio": ours / tuned, "target": target})
        if name in TARGET_RATIO:
            for counter, unit, most, label in TARGET_RATIO[name]:
                results.append({"name": label, "value": b[counter], "unit": unit,
                                "ratio": b[counter] / most if most else None, "target": most,
                                "at_most": True})
        elif name in AT_MOST:
            counter, unit, most = AT_MOST[name]
            results.append({"name": name, "value": b[counter], "unit": unit, "ratio": None,
                            "target": most, "at_most": True})
        elif name in ABSOLUTE:
            counter, unit, target = ABSOLUTE[name]
            results.append({"name": name, "value": b[counter], "unit": unit, "ratio": None,
                            "target": target})
        elif name not in PEERS:
            counter = next((c for c in ("samples_per_s", "images_per_s") if c in b), None)
            results.append({"name": name, "value": b[counter] if counter else b["real_time"],
                            "unit": counter.replace("_per_s", "/s") if counter else b["time_unit"],
                            "ratio": None, "target": None})
    # The fused MSConv stage against the composed one, stage by stage (and the gate network both
    # share, which bounds the ratio where the maps are small).
    for k in STAGES:
        fused, composed = by_name.get("fusionStage/fused/%d" % k), by_name.get("fusionStage/composed/%d" % k)
        if fused and composed:
            shape = "C%d %dx%d" % (fused["c"], fused["h"], fused["w"])
            results.append({"name": "fused vs composed MSConv stage %d (%s), fwd+bwd" % (k, shape),
                            "value": fused["passes_per_s"], "unit": "passes/s",
                            "ratio": fused["passes_per_s"] / composed["passes_per_s"],
                            "target": 2.5 if k <= 2 else 1.5})
            gate = by_name.get("fusionStage/gate_only/%d" % k)
            gate_fused = by_name.get("fusionStage/gate_only_fused/%d" % k)
            if gate and gate_fused:
                results.append({"name": "  gate network alone, stage %d: fused node vs modules" % k,
                                "value": 1000.0 / gate_fused["passes_per_s"], "unit": "ms",
                                "ratio": gate_fused["passes_per_s"] / gate["passes_per_s"],
                                "target": None})
        op = by_name.get("msconvOp/%d" % k)
        if op:
            peer = run_peer(["msconv_op.py", str(int(op["c"])), str(int(op["h"])),
                             str(int(op["w"])), "3"], args.threads)["passes_per_s"]
            results.append({"name": "msconv-official operator stage %d vs PyTorch, fwd+bwd" % k,
                            "value": op["passes_per_s"], "unit": "passes/s",
                            "ratio": op["passes_per_s"] / peer, "target": 1.3})
    # Where the MSNet-50 step's time goes: each op's self time per step, ours (LibTorch's
    # profiler) beside the peer's (PyTorch's profiler), the 12 largest of each.
    # Per-op breakdowns (self time under the profiler) of ours and the peer's, side by side.
    for bench_name, unit, peer_args, title in (
            ("stepProfile/msnet50_msconv_official_b16", "step",
             ["train_step.py", "--profile", "msnet50", "16", "3"], "MSNet-50 b16 step"),
            ("embedProfile/msnet50_inference", "batch",
             ["embed.py", "--profile", "msnet50", "64", "3"],
             "MSNet-50 b64 embeddings (inference form; peer channels-last eager)")):
        prof = by_name.get(bench_name)
        if not prof:
            continue
        peer = run_peer(peer_args, args.threads, KEEP_FREED)  # the tuned peer: same settings
        ours = {k[len("self_ms/"):]: v for k, v in prof.items() if k.startswith("self_ms/")}
        for label, call_ms, ops in (("ours", prof[unit + "_ms"], ours),
                                    ("PyTorch peer", peer[unit + "_ms"], peer["self_ms"])):
            results.append({"name": "%s under the profiler, %s" % (title, label),
                            "value": call_ms, "unit": "ms", "ratio": None, "target": None})
            for op, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:12]:
                results.append({"name": "  %s: %s" % (label, op), "value": ms,
                                "unit": "ms (%.1f %%)" % (100.0 * ms / call_ms), "ratio": None,
                                "target": None})
    # Embedding throughput: msconv eval's inference form against the PyTorch peer (the authors'
    # model, eager, NCHW and channels-last, in inference mode), and against our own training graph.
    for arch in ("msnet26", "msnet50", "sknet50"):
        ours = by_name.get("embedThroughput/%s_inference" % arch)
        if not ours:
            continue
        peer = run_peer(["embed.py", arch, "64", "4"], args.threads)
        tuned = run_peer(["embed.py", arch, "64", "4"], args.threads, KEEP_FREED)
        v = ours["images_per_s"]
        results.append({"name": "%s b64 embeddings, inference form vs PyTorch channels-last eager" % arch,
                        "value": v, "unit": "images/s",
                        "ratio": v / peer["images_per_s_channels_last"], "target": 1.5})
        results.append({"name": "  vs the same peer with our glibc and BLAS settings", "value": v,
                        "unit": "images/s", "ratio": v / tuned["images_per_s_channels_last"],
                        "target": 1.5})
        results.append({"name": "  vs PyTorch eager (NCHW)", "value": v,
                        "unit": "images/s", "ratio": v / peer["images_per_s"], "target": None})
        results.append({"name": "  vs PyTorch eager (NCHW) with our settings", "value": v,
                        "unit": "images/s", "ratio": v / tuned["images_per_s"], "target": None})
        conv_peak = by_name.get("convPeak")
        if conv_peak and ours.get("gmacs_per_image"):
            results.append({"name": "  its FLOP rate against the convolution peak",
                            "value": 100.0 * v * 2 * ours["gmacs_per_image"] / conv_peak["gflops"],
                            "unit": "% of peak", "ratio": None, "target": None})
        for kind, label in (("inference_unfused", "inference form without the fused convolutions"),
                            ("graph", "training graph, eval mode"),
                            ("graph_nhwc", "training graph, eval mode, channels-last")):
            g = by_name.get("embedThroughput/%s_%s" % (arch, kind))
            if g:
                results.append({"name": "  vs our %s" % label, "value": v, "unit": "images/s",
                                "ratio": v / g["images_per_s"], "target": None})
    # msconv-scope's telemetry (every 10 steps) against the same step without it.
    plain = by_name.get("trainStep/msnet_tiny_msconv_official_b64")
    tele = by_name.get("trainStep/msnet_tiny_msconv_official_b64_telemetry10")
    if plain and tele:
        results.append({"name": "msnet-tiny b64 step with telemetry every 10 steps vs without",
                        "value": tele["samples_per_s"], "unit": "samples/s",
                        "ratio": tele["samples_per_s"] / plain["samples_per_s"], "target": 0.97})
        results.append({"name": "  time in the telemetry statistics (same run)",
                        "value": tele["telemetry_pct"], "unit": "% of time", "ratio": None,
                        "target": 3.0, "at_most": True})
    peak = by_name.get("convPeak")
    if peak:
        results.append({"name": "convolution peak (3x3, 256 ch, 28x28, batch 16)",
                        "value": peak["gflops"], "unit": "GFLOP/s", "ratio": None,
                        "target": None})
        step = by_name.get("trainStep/msnet50_msconv_official_b16")
        mem = alone.get("trainMemory")
        if step and mem:
            flops = step["samples_per_s"] * mem["gmacs_per_sample"] * 2 * 3
            results.append({"name": "MSNet-50 b16 training step: model FLOP utilisation",
                            "value": 100.0 * flops / peak["gflops"], "unit": "% of peak",
                            "ratio": None, "target": 50.0})
    # The MSConv / SKConv branch convolutions (grouped 3x3, 32 groups, dilation 1 and 2) of
    # MSNet-50 at batch 16: our kernels against LibTorch's (oneDNN), forward + backward, timed
    # interleaved in one process; the ratio is ours / oneDNN, the target 40 % of the 3x3 peak
    # (convPeak's, or the 357 GFLOP/s measured on the reference 2-core machine when it did not run).
    conv_peak = by_name["convPeak"]["gflops"] if "convPeak" in by_name else 357.0
    for name in sorted(n for n in by_name if n.startswith("groupConv/")):
        b = by_name[name]
        stage, dil, stride, cl = (int(v) for v in name.split("/")[1:5])
        shape = "C%d %dx%d d%d s%d %s" % (b["c"], b["map"], b["map"], dil, stride,
                                          "channels-last" if cl else "NCHW")
        results.append({"name": "grouped 3x3 conv stage %d (%s) vs oneDNN, fwd+bwd" % (stage, shape),
                        "value": b["gflops"], "unit": "GFLOP/s",
                        "ratio": b["gflops"] / b["onednn_gflops"], "target": None})
        bits = int(b["plan"])
        plan = "+".join(p for bit, p in ((1, "fwd"), (2, "dx"), (4, "dw")) if bits & bit) or "none"
        results.append({"name": "  the per-pass plan (ours: %s) vs oneDNN" % plan,
                        "value": b["planned_gflops"], "unit": "GFLOP/s",
                        "ratio": b["planned_gflops"] / b["onednn_gflops"], "target": None})
        results.append({"name": "  the plan's share of the 3x3 peak (%.0f GFLOP/s)" % conv_peak,
                        "value": 100.0 * b["planned_gflops"] / conv_peak, "unit": "% of peak",
                        "ratio": None, "target": 40.0})
    for name in sorted(n for n in by_name if n.startswith("groupConvForward/")):
        b = by_name[name]
        stage, dil, stride = (int(v) for v in name.split("/")[1:4])
        results.append({"name": "grouped 3x3 conv forward b64 channels-last + bias, stage %d d%d s%d, "
                                "ours vs oneDNN" % (stage, dil, stride),
                        "value": b["gflops"], "unit": "GFLOP/s", "ratio": b["ratio"], "target": None})
    # BatchNorm (training) + shared-slope PReLU at the MSNet-50 shapes, fwd+bwd: the fused node
    # against LibTorch's composition and against LibTorch's BatchNorm + our PReLU (the form before
    # the fusion), timed interleaved in one process.
    for name in sorted((n for n in by_name if n.startswith("bnPrelu/")),
                       key=lambda n: tuple(int(v) for v in n.split("/")[1:3])):
        b = by_name[name]
        shape = "16x%dx%dx%d %s" % (b["c"], b["h"], b["w"], "channels-last" if b["nhwc"] else "NCHW")
        results.append({"name": "BN+PReLU fused vs LibTorch (%s), fwd+bwd" % shape,
                        "value": b["fused_ms"], "unit": "ms", "ratio": b["vs_libtorch"],
                        "target": None})
        results.append({"name": "  vs LibTorch BN + our PReLU", "value": b["fused_ms"], "unit": "ms",
                        "ratio": b["vs_before"], "target": None})
    step = by_name.get("bnPreluTrainStep")
    if step:
        results.append({"name": "MSNet-50 b16 training step, BN+act fused vs not (interleaved)",
                        "value": step["fused_ms"], "unit": "ms", "ratio": step["vs_unfused"],
                        "target": None})
        results.append({"name": "  vs LibTorch kernels only (MSCONV_KERNELS=libtorch)",
                        "value": step["fused_ms"], "unit": "ms", "ratio": step["vs_libtorch"],
                        "target": None})
    peer = peer_runs.get("trainStep/msnet50_msconv_official_b16")
    if peer and "trainMemory" in alone and "peak_rss_mib" in peer:
        ours = alone["trainMemory"]["peak_rss_mib"]
        results.append({"name": "MSNet-50 b16 training peak memory vs PyTorch", "value": ours,
                        "unit": "MiB", "ratio": ours / peer["peak_rss_mib"], "target": 1.0,
                        "at_most": True})
    # msconv-lab's event loop while a run trains on a worker thread (offscreen Qt).
    stall_bin = os.path.join(args.build, "bin", "msconv_ui_stall")
    if os.path.exists(stall_bin) and (not args.filter or "stall" in args.filter):
        # Alone, and beside a finished 20,000-step run's curves (each replot draws them too).
        for history, beside in ((0, ""), (20000, ", beside a 20,000-step run's curves")):
            r = subprocess.run([stall_bin, "--history", str(history)], capture_output=True,
                               text=True, check=True,
                               env=dict(os.environ, QT_QPA_PLATFORM="offscreen",
                                        MSCONV_THREADS=str(args.threads)))
            stall = json.loads(r.stdout.strip().splitlines()[-1])
            results.append({"name": "msconv-lab event-loop stall while training%s, p99" % beside,
                            "value": stall["p99_ms"], "unit": "ms", "ratio": None,
                            "target": 20.0, "at_most": True})
            results.append({"name": "msconv-lab event-loop stall while training%s, max" % beside,
                            "value": stall["max_ms"], "unit": "ms", "ratio": None,
                            "target": None})
    # A study's overhead: 6 msnet-tiny runs of 100 steps, wall against their training steps.
    if not args.filter or "study" in args.filter:
        r = subprocess.run([PEER_PYTHON, os.path.join(HERE, "study_overhead.py"),
                            os.path.join(args.build, "bin", "msconv"), str(args.threads)],
                           capture_output=True, text=True, check=True)
        st = json.loads(r.stdout.strip().splitlines()[-1])
        results.append({"name": "study of 6 runs x 100 steps: overhead without validation",
                        "value": st["overhead_without_validation_pct"], "unit": "%",
                        "ratio": None, "target": 10.0, "at_most": True})
        results.append({"name": "study of 6 runs x 100 steps: overhead with validation",
                        "value": st["overhead_pct"], "unit": "%", "ratio": None, "target": None})
    # Data-parallel training (issue #17): 1 process x T threads against 2 processes x T/2 threads
    # (and with train.sync_bn), same global batch, msnet-tiny and msnet-small.
    if not args.filter or "distributed" in args.filter:
        r = subprocess.run([PEER_PYTHON, os.path.join(HERE, "distributed.py"),
                            os.path.join(args.build, "bin", "msconv"), str(args.threads)],
                           capture_output=True, text=True, check=True)
        lines = r.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))  # its table and what it means on this machine
        dist = json.loads(lines[-1])
        half = max(1, dist["threads"] // 2)
        for model, d in dist["models"].items():
            tag = "%s b%d" % (model, d["batch"])
            results.append({"name": "%s: 1 process x %d threads" % (tag, dist["threads"]),
                            "value": d["a_samples_per_s"], "unit": "samples/s", "ratio": None,
                            "target": None})
            results.append({"name": "%s: 2 processes x %d thread%s vs 1 process" % (
                tag, half, "" if half == 1 else "s"), "value": d["b_samples_per_s"],
                "unit": "samples/s", "ratio": d["b_over_a"], "target": None})
            results.append({"name": "  exposed communication, 2 processes", "value":
                            d["b_comm_pct"], "unit": "% of time", "ratio": None, "target": None})
            results.append({"name": "%s: 2 processes + sync_bn vs 1 process" % tag,
                            "value": d["c_samples_per_s"], "unit": "samples/s",
                            "ratio": d["c_over_a"], "target": None})
            results.append({"name": "  exposed communication, 2 processes + sync_bn", "value":
                            d["c_comm_pct"], "unit": "% of time", "ratio": None, "target": None})
    path = os.path.join(args.build, "bench", "results.json")
    with open(path, "w") as f:  # the five documented keys
        json.dump([{k: r[k] for k in ("name", "value", "unit", "ratio", "target")}
                   for r in results], f, indent=1)
    print("\n%-62s %12s %-10s %8s %8s %s" % ("benchmark", "value", "unit", "ratio", "target", "met"))
    for r in results:
        met = ""
        if r["target"] is not None:
            got = r["ratio"] if r["ratio"] is not None else r["value"]
            ok = got <= r["target"] if r.get("at_most") else got >= r["target"]
            met = "yes" if ok else "NO"
        print("%-62s %12.2f %-10s %8s %8s %s" % (
            r["name"], r["value"], r["unit"],
            "%.2f" % r["ratio"] if r["ratio"] is not None else "-",
            ("<=%g" if r.get("at_most") else "%g") % r["target"] if r["target"] is not None
            else "-", met))
    print("\nwritten: " + os.path.abspath(path))


if __name__ == "__main__":
    main()
