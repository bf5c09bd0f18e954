"""Lowers fixture models with ExecuTorch's own pipeline (`to_edge(...).to_executorch()`) and
writes the programs, so that `tests/emit.rs`'s ignored test can decode what the stock emitter
writes:

    /work/venv/bin/python scripts/gen_et_programs.py OUT_DIR mobilenet_v2 resnet gpt ...
    ETPKG_ET_PTE_DIR=OUT_DIR cargo test --release --test emit -- --ignored
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "tests", "fixtures", "models")


def main(out, names):
    from executorch.exir import to_edge

    for name in names:
        ep = torch.export.load(os.path.join(MODELS, name, "export.pt2"))
        try:
            program = to_edge(ep).to_executorch()
        except Exception as e:  # report every model, not only the first failure
            print(f"{name}: ExecuTorch could not lower it: {type(e).__name__}: {e}")
            continue
        path = os.path.join(out, f"{name}.pte")
        with open(path, "wb") as f:
            f.write(program.buffer)
        print(f"{name}: wrote {path} ({len(program.buffer)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
