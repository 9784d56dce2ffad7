#!/usr/bin/env bash
# `make demo`: simulate the embedded `demo` repository end to end and show
# what it holds. Later steps (triplets, training, scoring) join this script
# as they land.
set -euo pipefail
repo=${1:-demo/repo}
jobs=${JOBS:-2}
bin=.venv/bin
mkdir -p "$(dirname "$repo")"

echo "== 1/2 Simulating the demo repository at $repo (-j $jobs)"
$bin/rb-simulate "$repo" --preset demo -j "$jobs" --overwrite --gallery "$(dirname "$repo")/gallery.png"

echo
echo "== 2/2 What is in it"
$bin/butler query-dataset-types "$repo"
echo
echo "Visits overlapping tract 3080 (training) and 4024 (testing):"
for tract in 3080 4024; do
    n=$($bin/butler query-data-ids "$repo" visit detector --where "skymap='DC2' AND tract=$tract" | tail -n +3 | wc -l)
    echo "  tract $tract: $n detector-visits"
done
cat <<TXT

Look further with:
  $bin/butler query-datasets $repo dia_source_unstandardized --collections DC2/sim
  $bin/butler query-data-ids $repo visit detector --where "skymap='DC2' AND tract=3080"
  $bin/rb-gallery $repo gallery.png
Gallery of example triplets per truth class: $(dirname "$repo")/gallery.png
TXT
