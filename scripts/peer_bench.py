"""Peer benchmark for issue 6: single-inference latency of etpkg's generated runtime against
ExecuTorch 1.5.1 with XNNPACK, ONNX Runtime (CPU execution provider) and PyTorch eager, on the
real models, at each requested thread count, measured in ONE run that alternates contenders.

For every model NAME the inputs and PyTorch's outputs come from REAL/NAME/ (input_N.npy,
output_N.npy, export.pt2 as written by scripts/real_models.py --export-only); the eager module
is built by the same builder (scripts/etpkg_models.py REAL_MODELS). Each contender is prepared
once under WORK/NAME/:
  etpkg       a project (ExecuTorch.toml: [model] source = export.pt2, one [target.host]
              with device "host", [verify] inputs/expected); timed by
              `ETPKG bench --target host --threads N --iterations K --warmup W --json` (its
              `median_ns`); `--threads N` splits the AVX-512 conv kernels over N threads
              (`etpkg bench` builds a runner with a thread pool for N > 1).
  et_xnnpack  torch.export -> to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])
              -> to_executorch() -> model.pte, run with executorch.runtime.Runtime; threads
              are set with executorch's pybindings `_unsafe_reset_threadpool(n)` (the
              threadpool XNNPACK runs on; torch.set_num_threads does not reach it; its default
              is the number of cores), once per thread count, and the method is loaded again
              after each resize because a loaded XNNPACK delegate keeps the old pool.
  ort         torch.onnx.export (dynamo first, the TorchScript exporter if that fails) ->
              model.onnx, onnxruntime.InferenceSession on CPUExecutionProvider with
              intra_op_num_threads = n, inter_op_num_threads = 1, sequential execution.
  eager       the torch module under torch.inference_mode() with torch.set_num_threads(n).

Measurement: for each thread count, ROUNDS rounds; in each round every contender runs W
untimed then K timed inferences and contributes the median of its K; the order of contenders
rotates every round so none always runs first or after the same neighbour. A contender's
figure is the median over rounds of those per-round medians. Every peer's output is checked
against output_N.npy (max|peer - torch| / max(1, max|torch|)) so a broken export is not timed.

The ratio column is etpkg / the issue's peer for that model: ExecuTorch+XNNPACK for
mobilenet_v2 and resnet18, ONNX Runtime for vit and gpt (issue 6 item 4).

Usage: peer_bench.py --etpkg PATH [--models NAME ...] [--threads 1 2] [--rounds N]
                     [--iterations K] [--warmup W] [--real DIR] [--work DIR] [--json FILE|-]
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import etpkg_models as em  # noqa: E402

CONTENDERS = ("etpkg", "et_xnnpack", "ort", "eager")
LABELS = {"etpkg": "etpkg", "et_xnnpack": "ET+XNNPACK", "ort": "ORT", "eager": "eager"}
# The peer each model's issue-6 target is stated against.
TARGET_PEER = {"mobilenet_v2": "et_xnnpack", "resnet18": "et_xnnpack", "vit": "ort", "gpt": "ort"}


def numbered(d, prefix):
    out = []
    while os.path.exists(os.path.join(d, f"{prefix}_{len(out)}.npy")):
        out.append(os.path.join(d, f"{prefix}_{len(out)}.npy"))
    return out


def rel_error(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    return float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))


def worst_error(outs, refs):
    if len(outs) != len(refs):
        return float("inf")
    return max((rel_error(o, r) for o, r in zip(outs, refs)), default=0.0)


def flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flat(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in flat(o)]
    return []


def time_loop(fn, iterations, warmup):
    """Median wall time in ns of `fn()` over `iterations` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times)


# ---- etpkg -------------------------------------------------------------------------------


def make_project(model_dir, name, proj):
    os.makedirs(proj, exist_ok=True)
    inputs = [os.path.abspath(p) for p in numbered(model_dir, "input")]
    expected = [os.path.abspath(p) for p in numbered(model_dir, "output")]
    lines = [
        "[package]",
        f'name = "bench_{name}"',
        'version = "0.1.0"',
        "",
        "[model]",
        f"source = {json.dumps(os.path.abspath(os.path.join(model_dir, 'export.pt2')))}",
        "",
        "[target.host]",
        'device = "host"',
        "",
        "[verify]",
        "inputs = [" + ", ".join(json.dumps(p) for p in inputs) + "]",
        "expected = [" + ", ".join(json.dumps(p) for p in expected) + "]",
        "tolerance = 1e-4",
    ]
    with open(os.path.join(proj, "ExecuTorch.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def etpkg_bench(etpkg, proj, threads, iterations, warmup):
    r = subprocess.run(
        [etpkg, "bench", "--target", "host", "--threads", str(threads),
         "--iterations", str(iterations), "--warmup", str(warmup), "--json"],
        cwd=proj,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        tail = " | ".join(r.stderr.strip().splitlines()[-4:])
        raise RuntimeError(f"etpkg bench exited {r.returncode}: {tail}")
    rows = json.loads(r.stdout)
    row = next((x for x in rows if x.get("target") == "host"), None)
    if row is None:
        raise RuntimeError("etpkg bench reported no `host` target")
    return float(row["median_ns"])


def etpkg_verify(etpkg, proj):
    r = subprocess.run([etpkg, "verify", "--target", "host", "--json"], cwd=proj, capture_output=True, text=True)
    try:
        rows = json.loads(r.stdout)
        return max(o["max_rel_error"] for row in rows for o in row["outputs"])
    except (json.JSONDecodeError, KeyError, ValueError, TypeError):
        tail = " | ".join(r.stderr.strip().splitlines()[-4:])
        raise RuntimeError(f"etpkg verify exited {r.returncode}: {tail}") from None


# ---- peers ---------------------------------------------------------------------------------


def export_et(model, args, path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.export(model, tuple(args))
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    with open(path, "wb") as f:
        f.write(prog.buffer)


def load_et(path):
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(path).load_method("forward")
    if method is None:
        raise RuntimeError(f"{path} has no method forward")
    return method


def et_threads(n):
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(n)
    return portable_lib._threadpool_get_thread_count()


def export_onnx(model, args, path):
    errors = []
    for dynamo in (True, False):
        try:
            torch.onnx.export(model, tuple(args), path, dynamo=dynamo, external_data=False)
            return "dynamo" if dynamo else "torchscript"
        except Exception as e:  # noqa: BLE001 - try the other exporter, report both if neither works
            errors.append(f"dynamo={dynamo}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise RuntimeError("; ".join(errors))


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# ---- driver --------------------------------------------------------------------------------


class Model:
    """Everything prepared for one model: the callables each contender's round times."""

    def __init__(self, name, real, work, etpkg, threads, log):
        self.name = name
        d = os.path.join(real, name)
        if not os.path.exists(os.path.join(d, "export.pt2")):
            raise RuntimeError(f"{d}/export.pt2 is missing (run scripts/real_models.py --export-only --out {real})")
        wd = os.path.join(work, name)
        os.makedirs(wd, exist_ok=True)
        self.inputs_np = [np.load(p) for p in numbered(d, "input")]
        self.refs = [np.load(p) for p in numbered(d, "output")]
        self.inputs = [torch.from_numpy(a) for a in self.inputs_np]
        builder, _ = em.REAL_MODELS[name]
        self.model = builder().eval()
        self.errors, self.skip, self.notes = {}, {}, {}

        with torch.inference_mode():
            self.errors["eager"] = worst_error([t.numpy() for t in flat(self.model(*self.inputs))], self.refs)

        self.etpkg, self.proj = etpkg, os.path.join(wd, "etpkg")
        try:
            make_project(d, name, self.proj)
            t0 = time.time()
            self.errors["etpkg"] = etpkg_verify(etpkg, self.proj)  # builds the target once, untimed
            log(f"  etpkg: built and verified in {time.time() - t0:.1f}s")
        except Exception as e:  # noqa: BLE001 - a contender that fails is reported, not fatal
            self.skip["etpkg"] = str(e)

        pte = os.path.join(wd, "model.pte")
        try:
            t0 = time.time()
            self.pte = pte
            export_et(self.model, self.inputs, pte)
            self.et = load_et(pte)
            self.errors["et_xnnpack"] = worst_error([t.numpy() for t in flat(self.et.execute(self.inputs))], self.refs)
            log(f"  et_xnnpack: exported {os.path.getsize(pte)} B in {time.time() - t0:.1f}s")
        except Exception as e:  # noqa: BLE001
            self.skip["et_xnnpack"] = f"{type(e).__name__}: {e}"

        onnx_path = os.path.join(wd, "model.onnx")
        try:
            t0 = time.time()
            self.notes["ort_exporter"] = export_onnx(self.model, self.inputs, onnx_path)
            self.ort = {n: ort_session(onnx_path, n) for n in threads}
            names = [i.name for i in self.ort[threads[0]].get_inputs()]
            self.ort_feed = dict(zip(names, self.inputs_np))
            self.errors["ort"] = worst_error(self.ort[threads[0]].run(None, self.ort_feed), self.refs)
            log(f"  ort: exported with {self.notes['ort_exporter']} in {time.time() - t0:.1f}s")
        except Exception as e:  # noqa: BLE001
            self.skip["ort"] = f"{type(e).__name__}: {e}"

        for c, err in self.errors.items():
            if err > 1e-3 and c not in self.skip:
                self.skip[c] = f"output differs from PyTorch's by {err:.2e} (relative)"

    def et_reload(self, threads):
        """Resize ExecuTorch's threadpool, then load the method afresh: the XNNPACK delegate keeps
        the pool it was initialised with, and resizing under a loaded method frees that pool
        beneath it (a use-after-free that crashed this script in libexecutorch_threadpool and,
        later, inside ONNX Runtime)."""
        if "et_xnnpack" in self.skip:
            return None
        self.et = None
        got = et_threads(threads)
        self.et = load_et(self.pte)
        return got

    def measure(self, contender, threads, iterations, warmup):
        if contender == "etpkg":
            return etpkg_bench(self.etpkg, self.proj, threads, iterations, warmup)
        if contender == "et_xnnpack":
            return time_loop(lambda: self.et.execute(self.inputs), iterations, warmup)
        if contender == "ort":
            sess, feed = self.ort[threads], self.ort_feed
            return time_loop(lambda: sess.run(None, feed), iterations, warmup)
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return time_loop(lambda: self.model(*self.inputs), iterations, warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--etpkg", required=True, help="path to the etpkg binary")
    ap.add_argument("--models", nargs="+", default=list(TARGET_PEER), choices=list(em.REAL_MODELS))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20, help="timed inferences per contender per round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed inferences before each round's timed ones")
    ap.add_argument("--real", default="/work/real", help="directory of model directories (real_models.py --out)")
    ap.add_argument("--work", default="/tmp/etpkg-peer-bench", help="scratch directory (projects, .pte, .onnx)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE ('-' for stdout)")
    a = ap.parse_args()
    etpkg = os.path.abspath(a.etpkg)
    if not os.access(etpkg, os.X_OK):
        ap.error(f"{etpkg} is not an executable file")

    def log(msg):
        print(msg, file=sys.stderr if a.json == "-" else sys.stdout, flush=True)

    # Exporters print progress on stdout; with `--json -` stdout must hold only the JSON.
    quiet = contextlib.ExitStack()
    if a.json == "-":
        quiet.enter_context(contextlib.redirect_stdout(sys.stderr))
    results = []
    for name in a.models:
        log(f"{name}: preparing")
        try:
            m = Model(name, a.real, a.work, etpkg, a.threads, log)
        except Exception as e:  # noqa: BLE001
            log(f"{name}: ERROR {type(e).__name__}: {e}")
            results.append({"model": name, "error": str(e)})
            continue
        for c, why in m.skip.items():
            log(f"  {c}: skipped: {why}")
        live = [c for c in CONTENDERS if c not in m.skip]
        for n in a.threads:
            try:
                et_count = m.et_reload(n)
            except Exception as e:  # noqa: BLE001
                m.skip["et_xnnpack"], et_count = f"{type(e).__name__}: {e}", None
            rounds = {c: [] for c in live}
            for r in range(a.rounds):
                order = live[r % len(live):] + live[: r % len(live)]
                for c in order:
                    if c in m.skip:  # failed earlier in this run: reported, not retried
                        continue
                    try:
                        rounds[c].append(m.measure(c, n, a.iterations, a.warmup))
                    except Exception as e:  # noqa: BLE001
                        m.skip[c] = f"{type(e).__name__}: {e}"
                        log(f"  {c}: failed at {n} thread(s): {e}")
            ms = {c: statistics.median(v) / 1e6 for c, v in rounds.items() if v and c not in m.skip}
            peer = TARGET_PEER.get(name)
            row = {
                "model": name,
                "threads": n,
                "etpkg_threads": n,
                "et_threads": et_count,
                "median_ms": ms,
                "rounds_ms": {c: [x / 1e6 for x in v] for c, v in rounds.items()},
                "ratio": {p: ms["etpkg"] / ms[p] for p in ms if p != "etpkg" and "etpkg" in ms},
                "target_peer": peer,
                "target_ratio": (ms["etpkg"] / ms[peer]) if peer in ms and "etpkg" in ms else None,
                "max_rel_error": m.errors,
                "skipped": dict(m.skip),
                "notes": dict(m.notes),
            }
            results.append(row)
            log(f"  {n} thread(s): " + ", ".join(f"{LABELS[c]} {v:.3f} ms" for c, v in ms.items()))
        m.et = None  # release the method before the next model resizes the pool
        del m

    print_table(results, a, log)
    quiet.close()
    if a.json:
        doc = {
            "rounds": a.rounds,
            "iterations": a.iterations,
            "warmup": a.warmup,
            "threads": a.threads,
            "etpkg": etpkg,
            "results": results,
        }
        text = json.dumps(doc, indent=1)
        if a.json == "-":
            print(text)
        else:
            with open(a.json, "w") as f:
                f.write(text + "\n")
    return 0


def print_table(results, a, log):
    log("")
    log(f"median ms of single inferences ({a.rounds} alternating rounds x {a.iterations} timed runs, "
        f"{a.warmup} warm-up); ratio = etpkg / the issue-6 peer")
    head = f"| {'model':<13}| thr | " + " | ".join(f"{LABELS[c]:>10}" for c in CONTENDERS) + " | ratio (peer)       |"
    log(head)
    log("|" + "|".join("-" * (len(p)) for p in head.split("|")[1:-1]) + "|")
    for r in results:
        if "error" in r:
            log(f"| {r['model']:<13}|  -  | error: {r['error']}")
            continue
        cells = []
        for c in CONTENDERS:
            v = r["median_ms"].get(c)
            cell = "skipped" if v is None else f"{v:.3f}"
            cells.append(f"{cell:>10}")
        tr = r["target_ratio"]
        ratio = "-" if tr is None else f"{tr:.2f} ({LABELS[r['target_peer']]})"
        log(f"| {r['model']:<13}| {r['threads']:>3} | " + " | ".join(cells) + f" | {ratio:<18} |")


if __name__ == "__main__":
    sys.exit(main())
