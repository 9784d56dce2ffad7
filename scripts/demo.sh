#!/usr/bin/env bash
# `make demo`: the DC2 real/bogus flow end to end on the embedded `demo`
# preset: simulate tracts 3080 and 4024, cut triplets, train on 3080 (CPU),
# score and filter 4024 with pipetask, and print the results.
# Re-running skips what is already done (the simulation by a stamp file, the
# pipeline steps by --skip-existing-in); `make clean` starts over.
set -euo pipefail
repo=${1:-demo/repo}
jobs=${JOBS:-2}
bin=$PWD/.venv/bin
export MEAS_REALBOGUS_DIR=${MEAS_REALBOGUS_DIR:-$PWD}
pipeline=$MEAS_REALBOGUS_DIR/pipelines/LSSTCam-imSim/RealBogusDC2.yaml
stamp=$(dirname "$repo")/simulated.stamp
both="instrument='LSSTCam-imSim' AND skymap='DC2' AND tract IN (3080, 4024)"
train="skymap='DC2' AND tract=3080"
test="instrument='LSSTCam-imSim' AND skymap='DC2' AND tract=4024"
# pipetask -j N starts a fresh Python process per quantum (spawn): ~3 s of imports
# against ~0.5 s of work for one of these detectors, so in-process -j 1 is faster here.
pjobs=${PIPETASK_JOBS:-1}
# Progress lines ("Executed N quanta ... remain"), the training epochs and warnings; not every quantum's chatter.
logs=(--log-level WARNING --log-level lsst.pipe.base.mp_graph_executor=INFO --log-level lsst.trainRealBogus=INFO)
mkdir -p "$(dirname "$repo")"
start=$SECONDS
step() { echo; echo "== $1  [$(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s]"; }
# once NAME CMD...: run a step unless an earlier demo finished it (pipetask
# refuses an empty graph, so finished steps are skipped here).
once() {
    local done="$(dirname "$repo")/$1.done"; shift
    if [[ -f $done ]]; then echo "Done earlier ($done)."; else "$@"; touch "$done"; fi
}

step "1/5 Simulating the demo repository at $repo (-j $jobs)"
if [[ -f $stamp && -f $repo/butler.yaml ]]; then
    echo "Already simulated ($stamp); 'make clean' to start over."
else
    rm -f "$stamp" "$(dirname "$repo")"/*.done
    $bin/rb-simulate "$repo" --preset demo -j "$jobs" --overwrite --gallery "$(dirname "$repo")/gallery.png"
    touch "$stamp"
fi

step "2/5 Cutting triplets of both tracts (buildTriplets, pipetask -j $pjobs)"
once triplets $bin/pipetask "${logs[@]}" run -b "$repo" -i DC2/sim -o demo/triplets --skip-existing-in demo/triplets \
    -p "$pipeline#step1" -d "$both" -j "$pjobs" --register-dataset-types

step "3/5 Training rbcnn on tract 3080 (injected sources) on the CPU (trainRealBogus)"
once model $bin/pipetask "${logs[@]}" run -b "$repo" -i demo/triplets -o demo/model --skip-existing-in demo/model \
    -p "$pipeline#step2" -d "$train" --register-dataset-types \
    -c trainRealBogus:device=cpu -c trainRealBogus:numThreads="$jobs" -c trainRealBogus:epochs=7 \
    -c trainRealBogus:validationFraction=0.1 -c trainRealBogus:calibration=natural \
    -c trainRealBogus:naturalCalibrationFraction=0.5  # tract 3080 is made by injection: calibrate on its natural rows

step "4/5 Scoring and filtering tract 4024 (computeReliability, filterDiaSourcePostReliability, -j $pjobs)"
once scores $bin/pipetask "${logs[@]}" run -b "$repo" -i DC2/sim,demo/model -o demo/scores --skip-existing-in demo/scores \
    -p "$pipeline#step3" -d "$test" -j "$pjobs" --register-dataset-types -c computeReliability:device=cpu

step "5/5 Evaluating tract 4024 against truth (evaluateRealBogus) and writing the report"
once eval $bin/pipetask "${logs[@]}" run -b "$repo" -i DC2/sim,demo/model,demo/scores -o demo/eval \
    --skip-existing-in demo/eval -p "$pipeline#step4" -d "skymap='DC2' AND tract=4024" --register-dataset-types
echo
echo "Results on the held-out tract 4024 (natural class mix; purity at completeness 0.90, completeness at purity 0.95):"
$bin/rb-report "$repo" -i demo/eval --tract 4024 -o "$(dirname "$repo")/report.html"
cat <<TXT

Done in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s. Look further with:
  $bin/butler query-datasets $repo dia_source_reliability --collections demo/scores
  $bin/butler query-data-ids $repo visit detector --collections demo/scores --datasets dia_source_reliability
  $bin/butler query-datasets $repo rb_model --collections demo/model
  $bin/python -c "from lsst.daf.butler import Butler; b = Butler('$repo', collections='demo/model'); \\
      p = b.get('rb_model'); print(p.version, p.threshold, p.metadata.metrics['validation'])"
  $bin/butler query-datasets $repo rb_metrics --collections demo/eval
Report (open in a browser): $(dirname "$repo")/report.html
Gallery of example triplets per truth class: $(dirname "$repo")/gallery.png
TXT
