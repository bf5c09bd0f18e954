"""ExecuTorch's own activation-arena size for the real models.

For every model in etpkg_models.REAL_MODELS (the heavy op-coverage list that
real_models.py also uses), builds it with the same seeded builder and example
inputs, then

  ep   = torch.export.export(model.eval(), args)
  prog = executorch.exir.to_edge(ep).to_executorch()   # portable ops, no delegates,
                                                        # default MemoryPlanningPass
and reads the planned buffer sizes of the `forward` execution plan from the
emitted program (prog.executorch_program.execution_plan[i].non_const_buffer_sizes).
Index 0 is reserved (always 0); the arena is the sum of the rest.

With --core the exported program is first run through run_decompositions()
and the result is reported as a second entry "<name>/core".

Prints a table and writes a JSON file mapping name ->
  {"arena_bytes": N, "buffer_sizes": [...], "planner": "...", "executorch": "1.5.1", ...}

Usage: et_arena.py [--out FILE] [--only NAME ...] [--core]
Run it with the venv python that has executorch installed (/work/venv/bin/python).
"""

import argparse
import json
import os
import sys
import time
from importlib.metadata import version

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etpkg_models as em  # noqa: E402


def planner_description():
    """Describe the MemoryPlanningPass that to_executorch() uses by default."""
    from executorch.exir.capture._config import ExecutorchBackendConfig

    mp = ExecutorchBackendConfig().memory_planning_pass
    algo = mp.memory_planning_algo
    names = [getattr(a, "__name__", None) or getattr(getattr(a, "func", None), "__name__", repr(a))
             for a in getattr(algo, "algo_list", [algo])]
    return {
        "planner": "+".join(names),
        "alignment": mp.alignment,
        "alloc_graph_input": mp.alloc_graph_input,
        "alloc_graph_output": mp.alloc_graph_output,
    }


def forward_plan(program):
    plans = [p for p in program.execution_plan if p.name == "forward"]
    if len(plans) != 1:
        raise RuntimeError(f"expected one 'forward' plan, got {[p.name for p in program.execution_plan]}")
    return plans[0]


def input_output_bytes(plan):
    """Bytes of the user inputs and outputs that the planner placed in the arena
    (it does when alloc_graph_input/output are on, the default)."""
    from executorch.exir.schema import ScalarType

    elt = {ScalarType.FLOAT: 4, ScalarType.LONG: 8, ScalarType.INT: 4, ScalarType.BOOL: 1,
           ScalarType.HALF: 2, ScalarType.BFLOAT16: 2, ScalarType.DOUBLE: 8,
           ScalarType.BYTE: 1, ScalarType.CHAR: 1, ScalarType.SHORT: 2}

    def nbytes(idx):
        v = plan.values[idx].val
        if getattr(v, "allocation_info", None) is None:   # not a tensor, or not planned
            return 0
        n = 1
        for s in v.sizes:
            n *= s
        return n * elt[v.scalar_type]

    return sum(nbytes(i) for i in plan.inputs), sum(nbytes(i) for i in plan.outputs)


def measure(ep):
    from executorch.exir import to_edge

    prog = to_edge(ep).to_executorch()
    plan = forward_plan(prog.executorch_program)
    sizes = [int(s) for s in plan.non_const_buffer_sizes]
    in_b, out_b = input_output_bytes(plan)
    return {
        "arena_bytes": sum(sizes[1:]),
        "buffer_sizes": sizes,
        "planned_input_bytes": in_b,
        "planned_output_bytes": out_b,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="target/et-arena.json", help="JSON output (default %(default)s)")
    ap.add_argument("--only", action="append", metavar="NAME", choices=list(em.REAL_MODELS),
                    help="measure only this model (repeatable)")
    ap.add_argument("--core", action="store_true",
                    help="also measure the run_decompositions() (core) flavour as NAME/core")
    a = ap.parse_args()

    et_version = version("executorch")
    desc = planner_description()
    results = {}
    ok = True
    print(f"executorch {et_version}, torch {torch.__version__}, planner {desc['planner']}, "
          f"alignment {desc['alignment']}, alloc_graph_input={desc['alloc_graph_input']}, "
          f"alloc_graph_output={desc['alloc_graph_output']}", flush=True)
    print(f"{'model':24s} {'arena_bytes':>12s} {'inputs':>10s} {'outputs':>10s}  buffer_sizes", flush=True)
    for name in a.only or list(em.REAL_MODELS):
        builder, inputs_fn = em.REAL_MODELS[name]
        try:
            model = builder()      # seeds itself (etpkg_models.seed) exactly as real_models.py
            args = inputs_fn()
            ep = torch.export.export(model.eval(), args)
            flavours = [(name, ep)]
            if a.core:
                flavours.append((f"{name}/core", ep.run_decompositions()))
        except Exception as e:
            ok = False
            print(f"{name:24s} ERROR export: {type(e).__name__}: {e}", flush=True)
            continue
        for key, prog in flavours:
            t0 = time.monotonic()
            try:
                r = measure(prog)
            except Exception as e:
                ok = False
                print(f"{key:24s} ERROR lowering: {type(e).__name__}: {e}", flush=True)
                continue
            r.update(planner=desc["planner"], alignment=desc["alignment"],
                     alloc_graph_input=desc["alloc_graph_input"],
                     alloc_graph_output=desc["alloc_graph_output"], executorch=et_version)
            results[key] = r
            print(f"{key:24s} {r['arena_bytes']:12,d} {r['planned_input_bytes']:10,d} "
                  f"{r['planned_output_bytes']:10,d}  {r['buffer_sizes']} "
                  f"({time.monotonic() - t0:.1f}s)", flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {a.out}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
