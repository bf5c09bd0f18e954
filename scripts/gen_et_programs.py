"""Lowers fixture models with ExecuTorch's own pipeline (`to_edge(...).to_executorch()`) and
writes the programs, so that etpkg's tests can decode and run what the stock emitter writes:

    /work/venv/bin/python scripts/gen_et_programs.py OUT_DIR mobilenet_v2 resnet gpt ...
    ETPKG_ET_PTE_DIR=OUT_DIR cargo test --release --test emit -- --ignored

With `--extra`, also writes the small programs tests/et_programs.rs runs beside the fixture
models, each with its inputs and PyTorch's outputs (fixed seeds, so reruns give the same
files) in OUT_DIR/<name>/:

    scalar_ops.pte  the `.Scalar` comparisons and arithmetic, `any` (one dim and all),
                    `arange`, and a split whose pieces are joined in another order
    noheader.pte    a program without constants serialized without the `eh00` extended
                    header (the FlatBuffer alone, as ExecuTorch's serializer wrote it before
                    segments), which the stock runtime loads too
    inline_constants.pte  a program whose constants stay inline in `constant_buffer`, the
                    deprecated layout both runtimes refuse (no inputs or outputs saved)

    /work/venv/bin/python scripts/gen_et_programs.py --extra tests/fixtures/pte/et
"""

import copy
import os
import sys

import numpy as np
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


class ScalarOps(torch.nn.Module):
    def forward(self, x, n):
        b = torch.remainder(x, 2.0) + torch.pow(x, 2)
        c = (x >= 0.5) | (x < -0.5) | (x != 0.25) & (x > -2)
        d = c.any(dim=1, keepdim=True)
        e = torch.arange(x.shape[1], dtype=torch.float32)
        pieces = torch.split(b, [1, 3, 2], dim=1)
        z = torch.cat([pieces[2], pieces[0], pieces[1]], dim=1)
        return z * e + d.float(), c.any(), n.eq(3)


class NoConstants(torch.nn.Module):
    def forward(self, x, y):
        return torch.relu(x * y + x)


def write_case(out, name, buf, inputs, outputs):
    with open(os.path.join(out, f"{name}.pte"), "wb") as f:
        f.write(buf)
    if inputs is None:
        print(f"{name}: wrote {len(buf)} bytes")
        return
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for i, t in enumerate(inputs):
        np.save(os.path.join(d, f"input_{i}.npy"), t.numpy())
    for i, t in enumerate(outputs):
        np.save(os.path.join(d, f"output_{i}.npy"), t.numpy())
    print(f"{name}: wrote {len(buf)} bytes, {len(inputs)} inputs, {len(outputs)} outputs")


def extra(out):
    from executorch.exir import to_edge
    from executorch.exir._serialize._program import _program_to_flatbuffer
    from executorch.exir.schema import SubsegmentOffsets
    from executorch.runtime import Runtime

    torch.manual_seed(0)
    x = torch.randn(3, 6)
    n = torch.tensor([1, 3, 5, 3])
    m = ScalarOps().eval()
    prog = to_edge(torch.export.export(m, (x, n))).to_executorch()
    with torch.no_grad():
        write_case(out, "scalar_ops", prog.buffer, [x, n], list(m(x, n)))

    x, y = torch.randn(2, 5), torch.randn(2, 5)
    m = NoConstants().eval()
    prog = to_edge(torch.export.export(m, (x, y))).to_executorch()
    # Without constants the only constant buffer is the empty placeholder; the stock runtime
    # refuses a file with any `constant_buffer` entry, so the program is written without it.
    program = copy.deepcopy(prog.executorch_program)
    assert all(len(b.storage) == 0 for b in program.constant_buffer)
    program.constant_buffer = []
    program.constant_segment = SubsegmentOffsets(segment_index=0, offsets=[0])
    buf = bytes(_program_to_flatbuffer(program).data)
    assert buf[8:12] != b"eh00", "the FlatBuffer alone has no extended header"
    # The stock runtime accepts the header-less file and computes the same result.
    got = Runtime.get().load_program(buf).load_method("forward").execute([x, y])[0]
    with torch.no_grad():
        want = m(x, y)
    assert torch.equal(got, want)
    write_case(out, "noheader", buf, [x, y], [want])

    lin = torch.nn.Linear(3, 2).eval()
    prog = to_edge(torch.export.export(lin, (torch.randn(4, 3),))).to_executorch()
    buf = bytes(_program_to_flatbuffer(prog.executorch_program).data)
    write_case(out, "inline_constants", buf, None, None)


if __name__ == "__main__":
    if sys.argv[1] == "--extra":
        extra(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2:])
