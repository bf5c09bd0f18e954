"""Makes the ExecuTorch interop fixture for tests/pte.rs, or checks that ExecuTorch loads a
.pte file etpkg wrote.

    /work/venv/bin/python scripts/gen_pte_fixture.py            # writes tests/fixtures/pte/
    /work/venv/bin/python scripts/gen_pte_fixture.py --check-etpkg FILE.pte [--relu]

The fixture is a small conv/relu/linear network exported with torch.export and lowered with
executorch.exir (seeded). Its facts JSON is taken from ExecuTorch's own Python view of the
program (exir's emitted schema objects), not from etpkg's reader, so the Rust test compares
two independent readings of the same bytes.
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "pte")


def make_fixture():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 5),
    ).eval()
    example = (torch.randn(1, 3, 8, 8),)
    from executorch.exir import to_edge

    exported = torch.export.export(model, example)
    et = to_edge(exported).to_executorch()
    data = bytes(et.buffer)
    program = et.executorch_program
    plan = program.execution_plan[0]
    tensors = []
    for i, v in enumerate(plan.values):
        val = v.val
        if type(val).__name__ == "Tensor":
            alloc = val.allocation_info
            tensors.append(
                {
                    "value": i,
                    "scalar_type": int(val.scalar_type),
                    "sizes": list(val.sizes),
                    "dim_order": list(val.dim_order),
                    "data_buffer_idx": int(val.data_buffer_idx),
                    "allocation": None
                    if alloc is None
                    else [
                        int(alloc.memory_id),
                        int(alloc.memory_offset_low) + (int(alloc.memory_offset_high) << 32),
                    ],
                }
            )
    kernels = []
    for ins in plan.chains[0].instructions:
        a = ins.instr_args
        if type(a).__name__ == "KernelCall":
            kernels.append({"op_index": a.op_index, "args": list(a.args)})
    facts = {
        "version": program.version,
        "plan_name": plan.name,
        "plans": len(program.execution_plan),
        "values": len(plan.values),
        "value_kinds": [type(v.val).__name__ for v in plan.values],
        "inputs": list(plan.inputs),
        "outputs": list(plan.outputs),
        "operators": [[op.name, op.overload] for op in plan.operators],
        "non_const_buffer_sizes": list(plan.non_const_buffer_sizes),
        "instructions": len(plan.chains[0].instructions),
        "kernels": kernels,
        "tensors": tensors,
    }
    # Constant bytes as ExecuTorch holds them, for a byte-level check of one weight.
    weight = model[0].weight.detach().contiguous().numpy().tobytes()
    facts["conv_weight_hex"] = weight.hex()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "conv_relu_linear.pte"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, "conv_relu_linear.json"), "w") as f:
        json.dump(facts, f, indent=1)
    print(f"wrote {len(data)} bytes, {len(plan.values)} values, ops {facts['operators']}")


def check_etpkg(path, relu):
    from executorch.runtime import Runtime

    with open(path, "rb") as f:
        data = f.read()
    program = Runtime.get().load_program(data)
    names = sorted(program.method_names)
    print(f"loaded {path}: methods {names}")
    if relu:
        method = program.load_method("forward")
        x = torch.tensor([[-1.5, 0.0, 2.0, -0.25], [3.0, -4.0, 0.5, 1.0]])
        out = method.execute([x])
        want = torch.relu(x)
        ok = torch.equal(out[0], want)
        print(f"relu output {out[0].tolist()} matches torch.relu: {ok}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-etpkg", metavar="FILE")
    ap.add_argument("--relu", action="store_true")
    args = ap.parse_args()
    if args.check_etpkg:
        check_etpkg(args.check_etpkg, args.relu)
    else:
        make_fixture()
