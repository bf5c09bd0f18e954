"""Runs etpkg-emitted aten-only programs in ExecuTorch's own runtime and compares them with
PyTorch's outputs saved beside each fixture. Needs the venv with executorch (not the test suite).

    ETPKG_EMIT_DUMP_DIR=/tmp/d cargo test --release --test emit legalize
    /work/venv/bin/python scripts/check_emitted.py /tmp/d

Each `<fixture>.<flavour>.pte` is loaded with `executorch.runtime.Runtime`, run on the
fixture's `input_*.npy`, and its outputs compared with `output_*.npy` relative to
`max(1, max|want|)`. Prints one line per program; exits 1 if any fails.
"""

import glob
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "tests", "fixtures", "models")


def numbered(d, prefix):
    out = []
    i = 0
    while os.path.exists(os.path.join(d, f"{prefix}_{i}.npy")):
        out.append(np.load(os.path.join(d, f"{prefix}_{i}.npy")))
        i += 1
    return out


def main(folder):
    from executorch.runtime import Runtime

    rt = Runtime.get()
    failed = 0
    for path in sorted(glob.glob(os.path.join(folder, "*.pte"))):
        fixture = os.path.basename(path).split(".")[0]
        d = os.path.join(MODELS, fixture)
        try:
            with open(path, "rb") as f:
                program = rt.load_program(f.read())
            method = program.load_method("forward")
            outs = method.execute([torch.from_numpy(x) for x in numbered(d, "input")])
            worst = 0.0
            for got, want in zip(outs, numbered(d, "output")):
                got = got.numpy()
                if got.shape != want.shape:
                    raise ValueError(f"shape {got.shape} != {want.shape}")
                if want.dtype == np.float32:
                    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
                    worst = max(worst, float(np.abs(got - want).max(initial=0.0)) / scale)
                elif not np.array_equal(got, want):
                    raise ValueError("integer or bool outputs differ")
            ok = worst <= 1e-4
            print(f"{os.path.basename(path)}: {'ok' if ok else 'MISMATCH'} (worst {worst:.2e})")
            failed += not ok
        except Exception as e:  # report every program, not only the first failure
            print(f"{os.path.basename(path)}: FAILED {type(e).__name__}: {e}")
            failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1])
