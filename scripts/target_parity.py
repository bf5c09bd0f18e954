"""Heavy parity tier on devices: every fixture model and every real model run by etpkg's
generated runtime (`etpkg verify`), for each x86-64 device this CPU can run, against
PyTorch's saved outputs.

For every model directory (one holding export.pt2, input_N.npy, output_N.npy) a project is
made under OUT/<name>/ with one target per device and a [verify] section on those files; then
`ETPKG verify --json` builds every target (program, kernel selection, generated crate, runner)
and compares each output: pass iff max|etpkg - torch| <= 1e-4 * max(1, max|torch|).

Devices: host, x86_64, x86_64-v3 (needs avx2, fma), x86_64-v4 (needs avx512f, avx512bw,
avx512cd, avx512dq, avx512vl); a device the CPU lacks is listed as skipped.

Usage: target_parity.py --etpkg PATH --out DIR [--models DIR ...] [--jobs N] [--only NAME ...]
Exits 1 if any model fails on any device.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time

DEVICES = {
    "host": [],
    "x86_64": [],
    "x86_64-v3": ["avx2", "fma"],
    "x86_64-v4": ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"],
}
TOLERANCE = 1e-4


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def numbered(d, prefix):
    out = []
    while os.path.exists(os.path.join(d, f"{prefix}_{len(out)}.npy")):
        out.append(os.path.join(d, f"{prefix}_{len(out)}.npy"))
    return out


def root_is_fixtures(d):
    return os.path.basename(os.path.dirname(os.path.abspath(d))) == "models" and os.path.basename(
        os.path.dirname(os.path.dirname(os.path.abspath(d)))
    ) == "fixtures"


def make_project(model_dir, name, out, devices):
    proj = os.path.join(out, name)
    os.makedirs(os.path.join(proj, "models"), exist_ok=True)
    shutil.copyfile(os.path.join(model_dir, "export.pt2"), os.path.join(proj, "models", "m.pt2"))
    inputs = [os.path.abspath(p) for p in numbered(model_dir, "input")]
    expected = [os.path.abspath(p) for p in numbered(model_dir, "output")]
    lines = [
        "[package]",
        f'name = "{name.replace("-", "_")}"',
        'version = "0.1.0"',
        "",
        "[model]",
        'source = "models/m.pt2"',
        "",
    ]
    for d in devices:
        lines += [f'[target."{d}"]', f'device = "{d}"', ""]
    lines += [
        "[verify]",
        "inputs = [" + ", ".join(json.dumps(p) for p in inputs) + "]",
        "expected = [" + ", ".join(json.dumps(p) for p in expected) + "]",
        f"tolerance = {TOLERANCE}",
    ]
    with open(os.path.join(proj, "ExecuTorch.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return proj


def verify(etpkg, proj):
    t0 = time.time()
    r = subprocess.run(
        [etpkg, "verify", "--json"], cwd=proj, capture_output=True, text=True
    )
    elapsed = time.time() - t0
    try:
        results = json.loads(r.stdout) if r.stdout.strip() else []
    except json.JSONDecodeError:
        results = []
    return r.returncode, results, r.stderr, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--etpkg", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--models",
        nargs="*",
        default=[],
        help="directories of model directories (default: the fixtures only)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()

    etpkg = os.path.abspath(args.etpkg)
    here = os.path.dirname(os.path.abspath(__file__))
    roots = [os.path.join(here, "..", "tests", "fixtures", "models")] + args.models
    models = []
    for root in roots:
        for name in sorted(os.listdir(root)):
            d = os.path.join(root, name)
            if os.path.exists(os.path.join(d, "export.pt2")) and numbered(d, "output"):
                if not args.only or name in args.only:
                    models.append((name, d))

    flags = cpu_flags()
    devices = [d for d, need in DEVICES.items() if all(f in flags for f in need)]
    skipped = [d for d in DEVICES if d not in devices]
    print(f"devices: {', '.join(devices)}" + (f"; skipped (CPU lacks them): {', '.join(skipped)}" if skipped else ""))

    os.makedirs(args.out, exist_ok=True)
    jobs = []
    for name, d in models:
        label = name if root_is_fixtures(d) else f"real_{name}"
        jobs.append((label, make_project(d, label, args.out, devices)))

    failed = 0
    header = f"{'model':<22}" + "".join(f"{d:>14}" for d in devices) + "   time"
    print(header, flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(verify, etpkg, proj): name for name, proj in jobs}
        done = {}
        for fut in concurrent.futures.as_completed(futures):
            done[futures[fut]] = fut.result()
    for name, _ in jobs:
        code, results, stderr, elapsed = done[name]
        by_target = {r["target"]: r for r in results}
        cells = []
        for d in devices:
            r = by_target.get(d)
            if r is None:
                cells.append(f"{'ERROR':>14}")
                continue
            worst = max((o["max_rel_error"] for o in r["outputs"]), default=0.0)
            ok = all(o["pass"] for o in r["outputs"])
            cells.append(f"{worst:>13.2e}{' ' if ok else '!'}")
        line = f"{name:<22}" + "".join(cells) + f"   {elapsed:5.1f}s"
        print(line)
        if code != 0 or len(by_target) != len(devices):
            failed += 1
            tail = "\n".join(stderr.strip().splitlines()[-6:])
            print(f"  FAILED: {tail}")
    print(f"{len(jobs) - failed}/{len(jobs)} models pass on {len(devices)} device(s) within {TOLERANCE:g} x max(1, max|torch|)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
