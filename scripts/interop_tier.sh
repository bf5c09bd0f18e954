#!/usr/bin/env bash
# Interoperability tier: the stock ExecuTorch runtime runs etpkg's `ops = "aten"` programs
# (direction A), and etpkg's runtime runs the programs ExecuTorch's own to_executorch() writes
# (direction B), for mobilenet_v2, resnet18 and the GPT decoder; every output must match PyTorch
# within 1e-4 * max(1, max|torch|). See docs/interop.md.
#
# Environment: PY = a python with torch, torchvision, numpy and executorch==1.5.1;
#              ETPKG = the etpkg binary (a release build).
# Each (model, direction) check stops at its first failing step and is reported as FAIL with
# that step's name and the tail of its log; an export failure stops the tier at once, since no
# check can run without its files. Exits 1 if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PY:?set PY to the python of a venv with executorch==1.5.1}"
: "${ETPKG:?set ETPKG to the etpkg binary}"
if [[ ! -x "$ETPKG" ]]; then
  echo "interop: ETPKG=$ETPKG is not an executable file" >&2
  exit 1
fi
ETPKG="$(cd "$(dirname "$ETPKG")" && pwd)/$(basename "$ETPKG")"

out=target/interop
logs="$out/logs"
results="$out/results.jsonl"
models=(mobilenet_v2 resnet18 gpt)
script=scripts/interop.py
mkdir -p "$logs"
: > "$results"

# run_step LOG CMD...: runs CMD with its output in LOG; on failure prints the log's tail
# (without the noise torch and ExecuTorch write on every start) and returns 1.
run_step() {
  local log="$1"
  shift
  if "$@" > "$log" 2>&1; then
    return 0
  fi
  echo "  failed: $*" >&2
  grep -v -e 'FutureWarning' -e 'return cls.__new__' -e 'cpuinfo_utils' -e 'KernelPreference' \
    "$log" | tail -n 12 | sed 's/^/  | /' >&2
  return 1
}

# npys DIR STEM: DIR/STEM_0.npy, DIR/STEM_1.npy, ... while they exist.
npys() {
  local i=0
  while [[ -e "$1/$2_$i.npy" ]]; do
    echo "$1/$2_$i.npy"
    i=$((i + 1))
  done
}

# record MODEL DIRECTION STATUS NOTE: one JSON line for a check that ended before `compare`.
record() {
  "$PY" -c 'import json, sys; print(json.dumps({"label": sys.argv[1] + " " + sys.argv[2], "status": sys.argv[3], "error": sys.argv[4]}))' \
    "$1" "$2" "$3" "$4" >> "$results"
}

# compare_into MODEL DIRECTION OUTDIR: compares OUTDIR/output_N.npy with the expected outputs.
compare_into() {
  local d="$out/$1" label="$1 $2" log="$logs/$1-$2-compare.log"
  local -a expected actual=()
  mapfile -t expected < <(npys "$d" expected)
  for i in "${!expected[@]}"; do
    actual+=("$3/output_$i.npy")
  done
  local rc=0
  "$PY" "$script" compare --label "$label" --expected "${expected[@]}" --actual "${actual[@]}" \
    > "$log" 2>&1 || rc=$?
  grep '^{' "$log" >> "$results" || true
  grep -v '^{' "$log" | sed 's/^/  /'
  return "$rc"
}

echo "== interop: ExecuTorch's own programs (export-et)"
stale=()
for m in "${models[@]}"; do
  d="$out/$m"
  fresh=1
  for f in export.pt2 et.pte et_ops.json input_0.npy expected_0.npy; do
    for src in "$script" scripts/real_models.py scripts/etpkg_models.py; do
      if [[ ! -e "$d/$f" || ! "$d/$f" -nt "$src" ]]; then
        fresh=0
      fi
    done
  done
  if [[ $fresh == 1 ]]; then
    echo "  $m: up to date"
  else
    stale+=("$m")
  fi
done
if ((${#stale[@]})); then
  if ! run_step "$logs/export-et.log" "$PY" "$script" export-et --out "$out" --only "${stale[@]}"; then
    echo "interop: export-et failed; see $logs/export-et.log" >&2
    exit 1
  fi
  grep -e 'et.pte' -e 'ERROR' "$logs/export-et.log" | sed 's/^/  /'
fi

failed=0
for m in "${models[@]}"; do
  d="$out/$m"
  mapfile -t inputs < <(npys "$d" input)
  in_args=()
  for p in "${inputs[@]}"; do
    in_args+=(--input "$p")
  done

  echo "== interop A: ExecuTorch runs etpkg's ops=\"aten\" build of $m"
  p="$d/etpkg_aten"
  a_out="$d/a_executorch_out"
  if ! run_step "$logs/$m-A-project.log" "$PY" "$script" project --model "$d" --out "$p" --ops aten; then
    record "$m" A FAIL "project"
    failed=1
  elif ! run_step "$logs/$m-A-build.log" "$ETPKG" build --manifest-path "$p/ExecuTorch.toml"; then
    record "$m" A FAIL "etpkg build"
    failed=1
  elif [[ ! -f "$p/target/etpkg/host/program.pte" ]]; then
    echo "  etpkg build wrote no $p/target/etpkg/host/program.pte" >&2
    record "$m" A FAIL "no program.pte"
    failed=1
  elif ! run_step "$logs/$m-A-run-et.log" "$PY" "$script" run-et \
      --pte "$p/target/etpkg/host/program.pte" --input "${inputs[@]}" --output-dir "$a_out"; then
    record "$m" A FAIL "ExecuTorch load/execute"
    failed=1
  elif ! compare_into "$m" A "$a_out"; then
    failed=1
  fi

  echo "== interop B: etpkg runs ExecuTorch's to_executorch() program of $m"
  b_out="$d/b_etpkg_out"
  rm -rf "$b_out"
  # `etpkg run --program` needs a project for its target; B's is the model's default build
  # (its own program is not what runs: a runtime is generated for ExecuTorch's program).
  pb="$d/etpkg_default"
  if ! run_step "$logs/$m-B-project.log" "$PY" "$script" project --model "$d" --out "$pb" --ops etpkg; then
    record "$m" B FAIL "project"
    failed=1
  elif ! run_step "$logs/$m-B-run.log" "$ETPKG" run --manifest-path "$pb/ExecuTorch.toml" \
      --target host --program "$d/et.pte" "${in_args[@]}" --output-dir "$b_out"; then
    record "$m" B FAIL "etpkg run"
    failed=1
  elif ! compare_into "$m" B "$b_out"; then
    failed=1
  fi

  # The two programs' sizes: etpkg's ops="aten" build against ExecuTorch's to_executorch().
  etpkg_pte="$p/target/etpkg/host/program.pte"
  if [[ -f "$etpkg_pte" && -f "$d/et.pte" ]]; then
    "$PY" -c 'import json, os, sys; print(json.dumps({"sizes": sys.argv[1], "etpkg": os.path.getsize(sys.argv[2]), "executorch": os.path.getsize(sys.argv[3])}))' \
      "$m" "$etpkg_pte" "$d/et.pte" >> "$results"
    echo "  $m .pte bytes: etpkg $(stat -c %s "$etpkg_pte"), ExecuTorch $(stat -c %s "$d/et.pte")"
  fi
done

echo "== interop summary (A: ExecuTorch runs etpkg's program; B: etpkg runs ExecuTorch's)"
"$PY" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sizes = [r for r in rows if "sizes" in r]
rows = [r for r in rows if "sizes" not in r]
print(f"{'check':26s} {'out':>3s} {'max|d|':>10s} {'rel':>10s} {'tol':>10s}  result")
for r in rows:
    if "max_abs" in r:
        print(f"{r['label']:26s} {r['output']:3d} {r['max_abs']:10.3e} {r['max_rel']:10.3e} "
              f"{r['tol']:10.3e}  {r['status']}")
    else:
        print(f"{r['label']:26s} {r.get('output', '-')!s:>3s} {'-':>10s} {'-':>10s} {'-':>10s}  "
              f"{r['status']} ({r['error']})")
if sizes:
    print(f"{'program':14s} {'etpkg .pte':>12s} {'ExecuTorch .pte':>16s} {'ratio':>7s}")
    for r in sizes:
        print(f"{r['sizes']:14s} {r['etpkg']:12d} {r['executorch']:16d} "
              f"{r['etpkg'] / r['executorch']:7.3f}")
EOF
if [[ $failed != 0 ]]; then
  echo "interop: FAILED (logs in $logs)" >&2
  exit 1
fi
echo "interop: all checks passed"
