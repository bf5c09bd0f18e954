"""Interoperability tier: etpkg and the stock ExecuTorch runtime run each other's programs.

Subcommands (all deterministic: models, weights and inputs come from the seeded builders in
etpkg_models.REAL_MODELS, exported by real_models.export_model):

  export-et --out DIR [--only NAME ...]
      For mobilenet_v2, resnet18 and gpt writes, under DIR/<name>/,
        export.pt2, core.pt2, input_N.npy, output_N.npy   (real_models.py's --export-only layout)
        expected_N.npy    PyTorch's eager outputs (the same arrays as output_N.npy)
        et.pte            executorch.exir.to_edge(torch.export.export(model, args))
                              .to_executorch().buffer  (portable ops, no delegates, defaults)
        et_ops.json       the operators ExecuTorch emitted into et.pte, and timings
  run-et --pte FILE --input a.npy [...] --output-dir DIR
      Runs method "forward" of FILE with the stock runtime (executorch.runtime) and writes
      DIR/output_N.npy. A load or execute failure prints ExecuTorch's error and exits 1.
  compare --expected a.npy [...] --actual b.npy [...] [--label TEXT]
      Per output: max|actual - expected|, that divided by max(1, max|expected|), and the
      tolerance 1e-4 * max(1, max|expected|); a PASS/FAIL line and a JSON line each.
      Exits 1 if any output fails, is missing, or has another shape or dtype.
  project --model DIR/<name> --out PROJECT_DIR --ops aten|etpkg
      Writes PROJECT_DIR/ExecuTorch.toml building DIR/<name>/export.pt2 for the host, with
      `ops = "aten"` in the release profile when asked, and [verify] data from the npy files.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The three models the interoperability requirement names; builders and inputs are the heavy
# tier's, so both tiers check the same programs.
MODELS = ("mobilenet_v2", "resnet18", "gpt")
REL_TOL = 1e-4


def numbered(d, stem):
    """Paths d/stem_0.npy, d/stem_1.npy, ... up to the first missing index."""
    out = []
    while os.path.exists(os.path.join(d, f"{stem}_{len(out)}.npy")):
        out.append(os.path.join(d, f"{stem}_{len(out)}.npy"))
    return out


def emitted_operators(exec_prog):
    """Operator names per execution plan, as ExecuTorch wrote them into the program."""
    plans = {}
    for plan in exec_prog.executorch_program.execution_plan:
        ops = []
        for op in plan.operators:
            ops.append(f"{op.name}.{op.overload}" if op.overload else op.name)
        plans[plan.name] = {"operators": ops, "delegates": [d.id for d in plan.delegates]}
    return plans


def cmd_export_et(a):
    import torch
    from executorch.exir import to_edge

    import etpkg_models as em
    from real_models import export_model

    ok = True
    for name in a.only or MODELS:
        builder, inputs_fn = em.REAL_MODELS[name]
        d = os.path.join(a.out, name)
        try:
            t0 = time.monotonic()
            _, refs = export_model(name, builder, inputs_fn, a.out)
            for i, r in enumerate(refs):
                np.save(os.path.join(d, f"expected_{i}.npy"), r)
            t1 = time.monotonic()
            # A fresh build from the seeded builder is the same module export_model exported;
            # exporting it here keeps ExecuTorch's input exactly the documented user call.
            model = builder().eval()
            args = inputs_fn()
            ep = torch.export.export(model, args)
            t2 = time.monotonic()
            edge = to_edge(ep)
            t3 = time.monotonic()
            prog = edge.to_executorch()
            buf = prog.buffer
            t4 = time.monotonic()
        except Exception as e:
            ok = False
            print(f"{name:14s} ERROR export: {type(e).__name__}: {e}", flush=True)
            continue
        with open(os.path.join(d, "et.pte"), "wb") as f:
            f.write(buf)
        plans = emitted_operators(prog)
        info = {
            "model": name,
            "pte_bytes": len(buf),
            "seconds": {
                "torch_export_and_fixtures": round(t1 - t0, 3),
                "torch_export": round(t2 - t1, 3),
                "to_edge": round(t3 - t2, 3),
                "to_executorch": round(t4 - t3, 3),
            },
            "plans": plans,
        }
        with open(os.path.join(d, "et_ops.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        ops = plans.get("forward", {}).get("operators", [])
        print(f"{name:14s} et.pte {len(buf):>10d} B  {len(ops):2d} ops  "
              f"export {t2 - t1:.2f}s to_edge {t3 - t2:.2f}s to_executorch {t4 - t3:.2f}s", flush=True)
    return 0 if ok else 1


def cmd_run_et(a):
    import torch
    from executorch.runtime import Runtime

    from gen_fixtures import to_np

    try:
        inputs = [torch.from_numpy(np.load(p)) for p in a.input]
    except (OSError, ValueError) as e:
        print(f"run-et: cannot read an input: {e}", file=sys.stderr)
        return 1
    try:
        rt = Runtime.get()
        prog = rt.load_program(a.pte)
        method = prog.load_method(a.method)
        if method is None:
            raise RuntimeError(f"the program has no method {a.method!r}")
        outs = method.execute(inputs)
    except Exception as e:
        print(f"run-et: ExecuTorch failed on {a.pte}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    os.makedirs(a.output_dir, exist_ok=True)
    for f in os.listdir(a.output_dir):  # never leave a previous run's outputs to be compared
        if f.startswith("output_") and f.endswith(".npy"):
            os.remove(os.path.join(a.output_dir, f))
    for i, t in enumerate(outs):
        if not isinstance(t, torch.Tensor):
            print(f"run-et: output {i} is a {type(t).__name__}, not a tensor", file=sys.stderr)
            return 1
        np.save(os.path.join(a.output_dir, f"output_{i}.npy"), to_np(t))
    return 0


def compare_one(exp, got):
    """(max abs error, error / max(1, max|expected|), absolute tolerance) or a mismatch text."""
    if got.shape != exp.shape or got.dtype != exp.dtype:
        return f"got {got.dtype}{list(got.shape)}, expected {exp.dtype}{list(exp.shape)}"
    if exp.size == 0:
        return 0.0, 0.0, REL_TOL
    e, g = exp.astype(np.float64), got.astype(np.float64)
    # Equal infinities and NaN against NaN are matches, as in the heavy tier.
    same = (e == g) | (np.isnan(e) & np.isnan(g))
    diff = np.where(same, 0.0, np.abs(g - e))
    finite = np.abs(e[np.isfinite(e)])
    scale = max(1.0, float(finite.max()) if finite.size else 1.0)
    err = float(diff.max())
    return err, err / scale, REL_TOL * scale


def cmd_compare(a):
    label = a.label or "compare"
    if len(a.expected) != len(a.actual):
        print(f"{label}: {len(a.actual)} actual outputs for {len(a.expected)} expected: FAIL")
        return 1
    ok = True
    for i, (pe, pa) in enumerate(zip(a.expected, a.actual)):
        rec = {"label": label, "output": i}
        try:
            res = compare_one(np.load(pe), np.load(pa))
        except (OSError, ValueError) as e:
            res = f"cannot read: {e}"
        if isinstance(res, str):
            rec.update(status="FAIL", error=res)
            print(f"{label} output {i}: {res}: FAIL")
        else:
            err, rel, tol = res
            passed = err <= tol
            rec.update(status="PASS" if passed else "FAIL", max_abs=err, max_rel=rel, tol=tol)
            print(f"{label} output {i}: max|d| {err:.3e}  rel {rel:.3e}  tol {tol:.3e}  "
                  f"{'PASS' if passed else 'FAIL'}")
        ok &= rec["status"] == "PASS"
        print(json.dumps(rec))
    return 0 if ok else 1


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def cmd_project(a):
    model_dir = os.path.abspath(a.model)
    name = os.path.basename(model_dir.rstrip(os.sep))
    source = os.path.join(model_dir, "export.pt2")
    inputs = numbered(model_dir, "input")
    expected = numbered(model_dir, "expected")
    missing = [p for p in [source] if not os.path.exists(p)]
    if missing or not inputs or not expected:
        print(f"project: {model_dir} lacks export.pt2, input_0.npy or expected_0.npy "
              f"(run export-et first)", file=sys.stderr)
        return 1
    pkg = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    if not pkg[:1].isalpha():
        pkg = "m_" + pkg
    lines = [
        "# Written by scripts/interop.py project; regenerated on every run.",
        "[package]",
        f"name = {toml_str(pkg)}",
        'version = "0.1.0"',
        "",
        "[model]",
        f"source = {toml_str(source)}",
        "",
    ]
    if a.ops == "aten":
        lines += ["[profile.release]", 'ops = "aten"', ""]
    lines += [
        "[target.host]",
        'device = "host"',
        "",
        "[verify]",
        "inputs = [" + ", ".join(toml_str(p) for p in inputs) + "]",
        "expected = [" + ", ".join(toml_str(p) for p in expected) + "]",
        f"tolerance = {REL_TOL}",
        "",
    ]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "ExecuTorch.toml"), "w") as f:
        f.write("\n".join(lines))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("export-et", help="export the models with ExecuTorch's own to_executorch")
    p.add_argument("--out", required=True)
    p.add_argument("--only", nargs="+", metavar="NAME", choices=list(MODELS))
    p.set_defaults(fn=cmd_export_et)

    p = sub.add_parser("run-et", help="run a .pte with the stock ExecuTorch runtime")
    p.add_argument("--pte", required=True)
    p.add_argument("--input", action="extend", nargs="+", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--method", default="forward")
    p.set_defaults(fn=cmd_run_et)

    p = sub.add_parser("compare", help="compare outputs against expected ones")
    p.add_argument("--expected", nargs="+", required=True)
    p.add_argument("--actual", nargs="+", required=True)
    p.add_argument("--label")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("project", help="write an etpkg project for an exported model")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ops", choices=("aten", "etpkg"), required=True)
    p.set_defaults(fn=cmd_project)

    a = ap.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
