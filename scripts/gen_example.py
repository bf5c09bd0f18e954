"""Generate the bundled example project's model and I/O under examples/classifier/.

Writes models/classifier.pt2 (torch.export.export of a small random-weight CNN
classifier), io/x.npy (a 1x3x32x32 f32 input) and io/y.npy (PyTorch's eager
output for it). The project manifest (ExecuTorch.toml) is maintained by hand.

Usage: gen_example.py [--out examples/classifier]
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etpkg_models as em  # noqa: E402
from gen_fixtures import check_close, flat_outputs, to_np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "examples", "classifier"))
    a = ap.parse_args()
    model = em.build_classifier()
    x = em.img(1, 3, 32, 32, s=300)
    with torch.no_grad():
        y = model(x)
    ep = torch.export.export(model, (x,))
    with torch.no_grad():
        check_close("classifier", [y], flat_outputs(ep.module()(x)), "export")
    os.makedirs(os.path.join(a.out, "models"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "io"), exist_ok=True)
    torch.export.save(ep, os.path.join(a.out, "models", "classifier.pt2"))
    np.save(os.path.join(a.out, "io", "x.npy"), to_np(x))
    np.save(os.path.join(a.out, "io", "y.npy"), to_np(y))
    print(f"wrote {a.out}: y = {np.array2string(y.numpy(), precision=4)}")


if __name__ == "__main__":
    main()
