"""Heavy parity tier: real-size models through etpkg's reference interpreter.

Exports torchvision mobilenet_v2, resnet18, mobilenet_v3_small (random weights,
1x3x224x224), the small VisionTransformer, the GPT decoder and the 1-D conv net
in both flavors into DIR (not committed), together with their inputs and
PyTorch's eager outputs:

  DIR/<name>/export.pt2, core.pt2      torch.export.export(...) / .run_decompositions()
  DIR/<name>/input_N.npy               user inputs in order
  DIR/<name>/output_N.npy              eager outputs (flattened, exported order)
  DIR/<name>/etpkg_<flavor>/output_N.npy   what etpkg wrote

Then, unless --export-only, runs for every archive
  ETPKG run --reference --model X.pt2 --input input_0.npy [...] --output-dir OUT
and compares every output: pass iff max|etpkg - torch| <= 1e-4 * max(1, max|torch|).
Prints one line per model and flavor; exits 1 if anything failed or errored.

Usage: real_models.py --out DIR (--etpkg PATH | --export-only) [--only NAME ...]
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etpkg_models as em  # noqa: E402
from gen_fixtures import check_close, export_flavors, flat_outputs, to_np  # noqa: E402

FLAVORS = ("export", "core")
REL_TOL = 1e-4


def export_model(name, builder, inputs_fn, out_dir):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model = builder()
    args = inputs_fn()
    with torch.no_grad():
        ref = [t.detach().clone() for t in flat_outputs(model(*args))]
    flavors = export_flavors(model, args)
    with torch.no_grad():
        for fl, ep in flavors.items():
            check_close(name, ref, flat_outputs(ep.module()(*args)), fl)
    for fl, ep in flavors.items():
        torch.export.save(ep, os.path.join(d, f"{fl}.pt2"))
    inputs = []
    for i, t in enumerate(args):
        p = os.path.join(d, f"input_{i}.npy")
        np.save(p, to_np(t))
        inputs.append(p)
    for i, t in enumerate(ref):
        np.save(os.path.join(d, f"output_{i}.npy"), to_np(t))
    return inputs, [to_np(t) for t in ref]


def rel_error(got, ref):
    """max|got - ref| / max(1, max|ref|); inf on shape/dtype mismatch."""
    if got.shape != ref.shape or got.dtype != ref.dtype:
        raise ValueError(f"got {got.dtype}{list(got.shape)}, expected {ref.dtype}{list(ref.shape)}")
    if ref.size == 0:
        return 0.0
    g, r = got.astype(np.float64), ref.astype(np.float64)
    same = (g == r) | (np.isnan(g) & np.isnan(r))   # equal infinities are a match
    diff = np.where(same, 0.0, np.abs(g - r))
    finite = np.abs(r[np.isfinite(r)])
    scale = max(1.0, float(finite.max()) if finite.size else 1.0)
    return float(diff.max()) / scale


def run_etpkg(etpkg, archive, inputs, out_dir, timeout):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):  # never compare against a previous run's outputs
        if f.startswith("output_") and f.endswith(".npy"):
            os.remove(os.path.join(out_dir, f))
    cmd = [etpkg, "run", "--reference", "--model", archive]
    for p in inputs:
        cmd += ["--input", p]
    cmd += ["--output-dir", out_dir]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"exit {r.returncode}: {' | '.join(tail)}")


def compare(out_dir, refs):
    worst = 0.0
    for i, ref in enumerate(refs):
        p = os.path.join(out_dir, f"output_{i}.npy")
        if not os.path.exists(p):
            raise RuntimeError(f"missing output_{i}.npy")
        try:
            worst = max(worst, rel_error(np.load(p), ref))
        except ValueError as e:
            raise RuntimeError(f"output_{i}: {e}") from None
    extra = os.path.join(out_dir, f"output_{len(refs)}.npy")
    if os.path.exists(extra):
        raise RuntimeError(f"etpkg wrote more than {len(refs)} outputs")
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--etpkg", help="path to the etpkg binary")
    ap.add_argument("--out", required=True, help="output directory (not committed)")
    ap.add_argument("--export-only", action="store_true", help="only write archives, inputs and torch outputs")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(em.REAL_MODELS))
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per etpkg run")
    a = ap.parse_args()
    if not a.export_only and not a.etpkg:
        ap.error("--etpkg is required unless --export-only")
    if a.etpkg:
        a.etpkg = os.path.abspath(a.etpkg)
        if not os.access(a.etpkg, os.X_OK):
            ap.error(f"{a.etpkg} is not an executable file")

    ok = True
    for name in a.only or list(em.REAL_MODELS):
        builder, inputs_fn = em.REAL_MODELS[name]
        try:
            inputs, refs = export_model(name, builder, inputs_fn, a.out)
        except Exception as e:
            ok = False
            print(f"{name:20s} {'-':7s} {'-':>10s} ERROR export: {type(e).__name__}: {e}", flush=True)
            continue
        if a.export_only:
            print(f"{name:20s} exported to {os.path.join(a.out, name)}", flush=True)
            continue
        for fl in FLAVORS:
            archive = os.path.join(a.out, name, f"{fl}.pt2")
            out_dir = os.path.join(a.out, name, f"etpkg_{fl}")
            t0 = time.monotonic()
            try:
                run_etpkg(a.etpkg, archive, inputs, out_dir, a.timeout)
                worst = compare(out_dir, refs)
            except Exception as e:
                ok = False
                print(f"{name:20s} {fl:7s} {'-':>10s} ERROR {type(e).__name__}: {e}", flush=True)
                continue
            passed = worst <= REL_TOL
            ok &= passed
            print(f"{name:20s} {fl:7s} {worst:10.3e} {'PASS' if passed else 'FAIL'} "
                  f"({time.monotonic() - t0:.1f}s)", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
