"""Op census: which serialized node targets do the etpkg reference models produce?

Exports each model with torch.export (flavor "export") and after
.run_decompositions() (flavor "core"), saves it with torch.export.save, reads
models/model.json back out of the zip, and writes, per model and flavor, the
sorted distinct node targets with one example of each node's serialized
`inputs` (named args) and `outputs`. Ends with the union of targets per flavor.

Usage: op_census.py [--out /work/census.txt] [--models NAME ...]
"""

import argparse
import json
import os
import sys
import tempfile
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etpkg_models as em  # noqa: E402

CENSUS_MODELS = {
    "tv_mobilenet_v2": (em.build_tv_mobilenet_v2, em.img224),
    "tv_resnet18": (em.build_tv_resnet18, em.img224),
    "tv_mobilenet_v3_small": (em.build_tv_mobilenet_v3_small, em.img224),
    "vit": (em.build_vit, em.img32),
    "gpt": (em.build_gpt, em.gpt_inputs),
    "conv1d_net": (em.build_conv1d_net, em.conv1d_inputs),
}


def serialized_graph(ep):
    """Return the serialized graph dict that torch.export.save writes."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.pt2")
        torch.export.save(ep, p)
        with zipfile.ZipFile(p) as z:
            name = next(n for n in z.namelist() if n.endswith("models/model.json"))
            return json.loads(z.read(name))["graph_module"]["graph"]


def node_examples(graph):
    """target -> example node plus every argument name/encoding seen.

    The serializer omits trailing arguments equal to their schema default, so
    different nodes of one target carry different argument lists; the example
    is the node with the most arguments and `seen` records every
    (name, arg-kind, encoding) combination over all nodes of that target.
    """
    ex = {}
    for n in graph["nodes"]:
        e = ex.setdefault(n["target"], {"inputs": n["inputs"], "outputs": n["outputs"],
                                        "seen": set(), "count": 0})
        e["count"] += 1
        if len(n["inputs"]) > len(e["inputs"]):
            e["inputs"], e["outputs"] = n["inputs"], n["outputs"]
        for a in n["inputs"]:
            e["seen"].add((a["name"], a.get("kind"), next(iter(a["arg"]))))
    return ex


def exports(builder, inputs_fn):
    m = builder()
    args = inputs_fn()
    # Exported with grad enabled, exactly as gen_fixtures.py does.
    ep = torch.export.export(m, args)
    yield "export", ep
    yield "core", ep.run_decompositions()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="/work/census.txt")
    ap.add_argument("--models", nargs="*")
    a = ap.parse_args()
    names = a.models or list(CENSUS_MODELS)
    union = {"export": {}, "core": {}}
    lines = [f"# torch {torch.__version__}; serialized node targets from models/model.json",
             "# each target: node count, every (arg name: encoding) seen ('(kw)' = kind 2,",
             "# keyword-only; otherwise kind 1, positional), and the node with the most",
             "# arguments as the example of its serialized `inputs` and `outputs`.",
             "# Note: trailing args equal to the schema default are omitted by the serializer;",
             "# non-finite floats are strings (\"as_float\": \"-Infinity\");",
             "# multi-output nodes list several outputs (unused ones named *_unused_N).", ""]
    for name in names:
        b, f = CENSUS_MODELS[name]
        for flavor, ep in exports(b, f):
            ex = node_examples(serialized_graph(ep))
            lines.append(f"== {name} [{flavor}] ({len(ex)} distinct targets)")
            for t in sorted(ex):
                seen = " ".join(f"{nm}:{enc}{'(kw)' if k == 2 else ''}"
                                for nm, k, enc in sorted(ex[t]["seen"], key=str))
                lines.append(f"  {t}    x{ex[t]['count']}")
                lines.append(f"    args seen: {seen}")
                lines.append(f"    inputs:  {json.dumps(ex[t]['inputs'], separators=(',', ':'))}")
                lines.append(f"    outputs: {json.dumps(ex[t]['outputs'], separators=(',', ':'))}")
                union[flavor].setdefault(t, []).append(name)
            lines.append("")
            print(f"{name} [{flavor}]: {len(ex)} targets", flush=True)
    for flavor in ("export", "core"):
        lines.append(f"== UNION [{flavor}] ({len(union[flavor])} targets)")
        for t in sorted(union[flavor]):
            lines.append(f"  {t}    <- {', '.join(union[flavor][t])}")
        lines.append("")
    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, a.out)  # atomic: a reader never sees a half-written census
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
