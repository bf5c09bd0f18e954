"""Generate the committed etpkg parity fixtures under tests/fixtures/models/<name>/.

For each fixture in etpkg_models.FIXTURES this writes
  export.pt2      torch.export.save(torch.export.export(model, args))
  core.pt2        the same program after .run_decompositions()
  input_N.npy     the user inputs, in order
  output_N.npy    PyTorch eager outputs, flattened in the exported program's output order
  meta.json       dtypes/shapes of inputs and outputs and the serialized op targets per flavor
Both exported flavors are run (in memory and after a save/load round trip) and
compared with eager before anything is written. A fixture that fails to export
is reported and skipped; the exit status is non-zero if any was skipped.

Usage: gen_fixtures.py [--only NAME ...] [--out DIR]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback

import numpy as np
import torch
import torch.utils._pytree as pytree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etpkg_models as em  # noqa: E402
from op_census import serialized_graph  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "models")


def flat_outputs(out):
    leaves = pytree.tree_leaves(out)
    for x in leaves:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"non-tensor output {type(x).__name__}")
    return leaves


def to_np(t):
    """C-ordered array: np.save would write fortran_order=True for an
    F-contiguous view, which simple .npy readers do not handle. (Not
    np.ascontiguousarray: it turns a 0-d array into shape (1,).)"""
    return np.array(t.detach().contiguous().numpy(), order="C", copy=True)


def max_diff(a, b):
    if a.shape != b.shape or a.dtype != b.dtype:
        return float("inf")
    if a.dtype.is_floating_point:
        d = (a.double() - b.double()).abs()
        # inf == inf (e.g. masked scores) counts as equal; NaN must match NaN.
        same = (a == b) | (a.isnan() & b.isnan())
        d = torch.where(same, torch.zeros_like(d), d)
        return d.max().item() if d.numel() else 0.0
    return 0.0 if torch.equal(a, b) else float("inf")


def check_close(name, ref, got, what):
    if len(ref) != len(got):
        raise RuntimeError(f"{what}: {len(got)} outputs, eager has {len(ref)}")
    worst = 0.0
    for i, (r, g) in enumerate(zip(ref, got)):
        d = max_diff(r, g)
        tol = 1e-5 * max(1.0, r.abs().max().item() if r.numel() and r.dtype.is_floating_point else 1.0)
        if not d <= tol:
            raise RuntimeError(f"{what}: output {i} differs from eager by {d} "
                               f"(shape {tuple(g.shape)} {g.dtype} vs {tuple(r.shape)} {r.dtype})")
        worst = max(worst, d)
    return worst


def targets(ep):
    return sorted({n["target"] for n in serialized_graph(ep)["nodes"]})


def spec(t):
    return {"dtype": str(to_np(t).dtype), "shape": list(t.shape)}


def format_meta(meta):
    """JSON with one tensor spec / op target per line (readable diffs)."""
    parts = []
    for k, v in meta.items():
        items = ",\n".join("    " + json.dumps(x) for x in v)
        parts.append(f'  {json.dumps(k)}: [\n{items}\n  ]' if v else f'  {json.dumps(k)}: []')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def export_flavors(model, args):
    """Export a model in both flavors. Exporting happens with grad enabled (the
    usual user call) so nn.TransformerEncoderLayer takes its plain-op path."""
    ep = torch.export.export(model, args)
    return {"export": ep, "core": ep.run_decompositions()}


def roundtrip(ep):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.pt2")
        torch.export.save(ep, p)
        return torch.export.load(p)


def generate(name, builder, inputs_fn, out_root):
    model = builder()
    args = inputs_fn()
    with torch.no_grad():
        ref = [t.detach().clone() for t in flat_outputs(model(*args))]
    flavors = export_flavors(model, args)
    worst = {}
    with torch.no_grad():
        for fl, ep in flavors.items():
            w1 = check_close(name, ref, flat_outputs(ep.module()(*args)), f"{fl} (in memory)")
            w2 = check_close(name, ref, flat_outputs(roundtrip(ep).module()(*args)), f"{fl} (saved+loaded)")
            worst[fl] = max(w1, w2)

    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)  # stale input_N/output_N from an older definition must not linger
    os.makedirs(d)
    torch.export.save(flavors["export"], os.path.join(d, "export.pt2"))
    torch.export.save(flavors["core"], os.path.join(d, "core.pt2"))
    for i, t in enumerate(args):
        np.save(os.path.join(d, f"input_{i}.npy"), to_np(t))
    for i, t in enumerate(ref):
        np.save(os.path.join(d, f"output_{i}.npy"), to_np(t))
    meta = {
        "inputs": [spec(t) for t in args],
        "outputs": [spec(t) for t in ref],
        "ops_export": targets(flavors["export"]),
        "ops_core": targets(flavors["core"]),
    }
    with open(os.path.join(d, "meta.json"), "w") as fh:
        fh.write(format_meta(meta))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--out", default=DEFAULT_OUT)
    a = ap.parse_args()
    names = a.only or list(em.FIXTURES)
    unknown = [n for n in names if n not in em.FIXTURES]
    if unknown:
        sys.exit(f"unknown fixture(s): {unknown}; known: {list(em.FIXTURES)}")
    failed = []
    for n in names:
        b, f = em.FIXTURES[n]
        try:
            w = generate(n, b, f, a.out)
            print(f"ok    {n:22s} max|exported-eager| export={w['export']:.2e} core={w['core']:.2e}", flush=True)
        except Exception as e:
            failed.append(n)
            print(f"SKIP  {n}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=3)
    if failed:
        print(f"skipped: {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
