#!/usr/bin/env bash
# `make bench`: the performance benchmarks, JSON lines into benchmarks/results/
# (one .jsonl per script) and a summary table on stdout at the end.
# Timings are only meaningful on an otherwise idle machine.
set -euo pipefail
out=benchmarks/results
mkdir -p "$out"
py=.venv/bin/python
run() {  # name, args...
    local name=$1; shift
    echo "== $name $*" >&2
    local start=$SECONDS
    $py "benchmarks/$name.py" "$@" > "$out/$name.jsonl"
    echo "   $((SECONDS - start)) s -> $out/$name.jsonl" >&2
}
run cutouts
run inference
run compute_reliability
run training
run simulator_throughput --preset demo --visits-per-tract 6 --jobs 1 2
$py benchmarks/summary.py "$out"/{cutouts,inference,compute_reliability,training,simulator_throughput}.jsonl
