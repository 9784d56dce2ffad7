#!/usr/bin/env bash
# `make bench`: every benchmark, JSON lines into benchmarks/results/.
set -euo pipefail
out=benchmarks/results
mkdir -p "$out"
py=.venv/bin/python
$py benchmarks/simulator_throughput.py --jobs 1 2 | tee "$out/simulator_throughput.jsonl"
$py benchmarks/catalog_classifier.py --preset demo -j 2 | tee "$out/catalog_classifier.jsonl"
