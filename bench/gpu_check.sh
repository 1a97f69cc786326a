#!/usr/bin/env bash
# The one prepared check for a GPU machine, built around the user's own command (about 7 minutes).
#
# On the device machine, from the project root, with the staged packages unpacked and on PYTHONPATH
# (../shared/hooks/stage-gpu-wheels.sh prints the calls):
#   bash bench/gpu_check.sh
# Everything lands in one results folder, $OUT/gpu_check (the device tool's folder; /tmp/gpu_check without
# it), packed as $OUT/gpu_check.tar.gz beside $OUT/summary.txt and $OUT/gpu_check.md: every run's
# progress.csv, summary.json, config.yaml and log tail, the rates report, the test log.
#
# Steps:
#   1. training, ROUNDS of at most three shipped tasks side by side on the one GPU, each exactly
#      `make train task=T train.minutes=M` (the shipped gpu settings, a cold kernel cache of its own so the
#      compiles run in parallel, its own run folder), stopped at M minutes, start-up included;
#   2. bench/gpu_report.py: the runs against the issue's goals (gpu_check.md);
#   3. bench/gpu.py: humanoid physics rates at 4096 and 8192 worlds, env-only and PPO/TRPO loop rates at the
#      shipped 4096 worlds (gpu_rates.md), within RATES_CAP seconds;
#   4. the Warp tests on cuda:0 (test_warp_sim, test_warp_parity, test_warp_training), within TESTS_CAP.
#
# Environment:
#   ROUNDS     "task,task,task:minutes ..." (default "humanoid,ant,walker2d:5"); a task written task@algo trains
#              that algorithm (humanoid@trpo: TRPO's gpu settings from configs/trpo/humanoid.yaml), so
#              "humanoid,humanoid@trpo,franka_push:5" compares PPO and TRPO side by side
#   ALGO       when set, every run without its own @algo trains algo=$ALGO
#   EXTRA      extra key=value overrides for every run (e.g. "task.num_envs=8192")
#   PY         the python (default python3); the Makefile's set-up is skipped (SETUP=): no package index there
#   RATES_CAP, TESTS_CAP   seconds (default 60 and 80)
#   SMOKE=1    the same flow on a CPU with tiny sizes: a test of this script, not of a GPU
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp}"
RES="$OUT/gpu_check"
rm -rf "$RES"; mkdir -p "$RES/logs"
ROUNDS="${ROUNDS:-humanoid,ant,walker2d:5}"
ALGO="${ALGO:-}"
EXTRA="${EXTRA:-}"
PY="${PY:-python3}"
RATES_CAP="${RATES_CAP:-60}"
TESTS_CAP="${TESTS_CAP:-80}"
SMOKE="${SMOKE:-0}"
START=$(date +%s)
log() { echo "[gpu_check $(($(date +%s) - START))s] $*" | tee -a "$OUT/summary.txt"; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The GPU machine has no libEGL: importing MuJoCo with MUJOCO_GL=egl fails there, and nothing here renders.
export MUJOCO_GL="${MUJOCO_GL:-disable}"
DEVICE=cuda:0
if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu
  EXTRA="task.backend=gpu train.device=cpu task.num_envs=4 train.steps_per_env=8 algo.minibatch_size=16 \
policy.hidden_sizes=[16] value.hidden_sizes=[16] train.eval_episodes=1 train.eval_every=1 $EXTRA"
fi

$PY - >"$RES/versions.txt" 2>&1 <<'EOF'
import mujoco, mujoco_warp, torch, warp
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("mujoco", mujoco.__version__, "mujoco_warp", mujoco_warp.__version__, "warp", warp.config.version)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
EOF
log "$(tr '\n' ' ' <"$RES/versions.txt")"
nvidia-smi >"$RES/nvidia-smi.txt" 2>&1 || true

# 1. training: the user's command, three at a time (what make would run, where the machine has no make)
for round in $ROUNDS; do
  tasks="${round%%:*}"; minutes="${round##*:}"
  pids=()
  for run in ${tasks//,/ }; do
    task="${run%@*}"; algo="$ALGO"; [ "$run" != "$task" ] && algo="${run#*@}"
    mkdir -p "$RES/cache/$run"
    if command -v make >/dev/null; then
      cmd=(make --no-print-directory train SETUP= PY="$PY" "task=$task")
      [ -n "$algo" ] && cmd+=("algo=$algo")
    else
      cmd=("$PY" -m app train --task "$task")
      [ -n "$algo" ] && cmd+=(--algo "$algo")
    fi
    # shellcheck disable=SC2206
    cmd+=("train.minutes=$minutes" "train.runs_dir=$RES/runs" train.progress=log $EXTRA)
    WARP_CACHE_PATH="$RES/cache/$run" PYTHONUNBUFFERED=1 timeout --signal=INT --kill-after=60 $((minutes * 60 + 150)) \
      "${cmd[@]}" >"$RES/logs/$run.log" 2>&1 &
    pids+=($!)
  done
  log "round $round: started ${tasks//,/, } for $minutes min each (pids ${pids[*]})"
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    run=$(echo "$tasks" | cut -d, -f$((i + 1)))
    log "  $run: rc=$rc $(grep -E '^(done|error)' "$RES/logs/$run.log" | tail -n 1)"
  done
done
rm -rf "$RES/cache"
for f in "$RES"/logs/*.log; do tail -n 40 "$f" >"${f%.log}.tail"; done

# 2. the runs against the goals
$PY bench/gpu_report.py "$RES" >/dev/null 2>"$RES/logs/report.err" && cp "$RES/gpu_check.md" "$OUT/gpu_check.md"
log "step 2: $(grep -c '^| ' "$RES/gpu_check.md" 2>/dev/null || echo 0) table lines in gpu_check.md"

# 3. rates (the report is rewritten after every row, so a timeout keeps what was measured)
if [ "$SMOKE" = 1 ]; then RATE_ARGS=(--smoke); else RATE_ARGS=(--worlds 4096,8192 --loop-worlds 4096); fi
timeout "$RATES_CAP" $PY bench/gpu.py "${RATE_ARGS[@]}" --no-compile --learn-tasks "" --out "$RES/gpu_rates.md" \
  >"$RES/logs/rates.log" 2>&1
log "step 3: rc=$? (rates -> gpu_rates.md)"

# 4. the Warp tests on the GPU; the serves-a-CPU-machine test renders with EGL, which that machine lacks
if $PY -c 'import pytest' 2>/dev/null; then
  POLICYLAB_WARP_DEVICE=$DEVICE timeout "$TESTS_CAP" $PY -m pytest -q -x -p no:cacheprovider \
    tests/envs/test_warp_sim.py tests/envs/test_warp_parity.py tests/envs/test_warp_training.py \
    -k "not serves_a_machine_without" >"$RES/logs/tests.log" 2>&1
  log "step 4: rc=$? $(tail -n 1 "$RES/logs/tests.log")"
else
  log "step 4: skipped (pytest not importable)"
fi

find "$RES/runs" -name '*.pt' -delete 2>/dev/null
cp "$OUT/summary.txt" "$RES/" 2>/dev/null
tar czf "$OUT/gpu_check.tar.gz" -C "$OUT" gpu_check
log "done in $(($(date +%s) - START)) s; results in $OUT/gpu_check.tar.gz"
