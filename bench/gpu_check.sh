#!/usr/bin/env bash
# The one prepared GPU check of the gpu backend, for a session lent a CUDA machine (< 8 minutes).
#
# From the project root on the device machine, after the staged wheels arrived (../shared/hooks/
# stage-gpu-wheels.sh; stage pytest too for step 3: add `pytest iniconfig pluggy packaging` to its pins):
#   bash bench/gpu_check.sh            # results under $OUT (the device tool's folder), else /tmp/gpu_check
# Environment: BUDGET (seconds, default 460), STAGE (wheels folder, default /root/stage),
# LEARN_TASKS (default humanoid; humanoid,ant for both), SMOKE=1 (the same flow on a CPU, tiny sizes).
#
# Steps, each bounded so the whole fits the budget, each log under $OUT:
#   0. packages: mujoco, mujoco-warp, warp-lang, gymnasium importable, else installed from $STAGE (no index);
#   1. build + step the humanoid on cuda:0 twice: with the machine's empty kernel cache (compile) and warm;
#   2. bench/gpu.py without learning: physics 1k/4k/8k/16k worlds, env-only, PPO and TRPO loops;
#   3. the Warp tests on the GPU (POLICYLAB_WARP_DEVICE=cuda:0), if pytest is importable;
#   4. learning runs with the time left: humanoid (and ant) with PPO and TRPO to returns 5000 and 6000.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
BUDGET="${BUDGET:-460}"
STAGE="${STAGE:-/root/stage}"
LEARN_TASKS="${LEARN_TASKS:-humanoid}"
SMOKE="${SMOKE:-0}"
PY="${PY:-python3}"
[ -x .venv/bin/python ] && [ "$SMOKE" = 1 ] && PY=.venv/bin/python
START=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - START))); }
log() { echo "[gpu_check $(($(date +%s) - START))s] $*" | tee -a "$OUT/summary.txt"; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The GPU machine has no libEGL: importing mujoco with MUJOCO_GL=egl (envs' default) fails there, and
# nothing here renders.
export MUJOCO_GL="${MUJOCO_GL:-disable}"
DEVICE=cuda:0
WORLDS=1024
BENCH_ARGS=()
if [ "$SMOKE" = 1 ]; then DEVICE=cpu; WORLDS=16; BENCH_ARGS=(--smoke); fi

# 0. packages
if ! $PY -c 'import mujoco, mujoco_warp, warp, gymnasium' 2>/dev/null; then
  log "installing the staged wheels from $STAGE"
  if ls "$STAGE"/wheels.tar.* >/dev/null 2>&1 && ! ls "$STAGE"/*.whl >/dev/null 2>&1; then
    cat "$STAGE"/wheels.tar.* | tar xf - -C "$STAGE"
  fi
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$STAGE"/*.whl >"$OUT/install.log" 2>&1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
$PY - >"$OUT/versions.txt" 2>&1 <<'EOF'
import mujoco, mujoco_warp, torch, warp
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("mujoco", mujoco.__version__, "mujoco_warp", mujoco_warp.__version__, "warp", warp.config.version)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
EOF
log "$(tr '\n' ' ' <"$OUT/versions.txt")"
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true

# 1. compile: the first build on this machine compiles every kernel; the second loads them
for cache in cold warm; do
  timeout $(($(left) > 200 ? 200 : $(left))) $PY -c "
import time, sys
t = time.perf_counter()
from envs.native import NATIVE_TASKS, make_simulator
sim = make_simulator('gpu', NATIVE_TASKS['Humanoid-v5'], $WORLDS, device='$DEVICE')
unstable = sim.step(5)
import torch
assert torch.isfinite(sim.qpos).all(), 'non-finite state'
print(f'humanoid $WORLDS worlds built and stepped in {time.perf_counter() - t:.1f} s ($cache kernel cache); '
      f'unstable {int(unstable.sum())}')
" >"$OUT/compile_$cache.txt" 2>&1
  log "step 1 ($cache): rc=$? $(tail -n 1 "$OUT/compile_$cache.txt")"
done

# 2. rates (the report is rewritten after every row, so a timeout keeps what was measured)
timeout $(($(left) > 240 ? 240 : $(left) - 30)) $PY bench/gpu.py "${BENCH_ARGS[@]}" --no-compile --learn-tasks "" \
  --out "$OUT/gpu_results.md" >"$OUT/bench.log" 2>&1
log "step 2: rc=$? (bench/gpu.py rates -> gpu_results.md)"

# 3. the Warp tests on the GPU
if $PY -c 'import pytest' 2>/dev/null && [ "$(left)" -gt 120 ]; then
  POLICYLAB_WARP_DEVICE=$DEVICE timeout $(($(left) > 150 ? 150 : $(left) - 60)) $PY -m pytest -q -x \
    tests/envs/test_warp_sim.py tests/envs/test_warp_parity.py >"$OUT/tests.log" 2>&1
  log "step 3: rc=$? $(tail -n 1 "$OUT/tests.log")"
else
  log "step 3: skipped (pytest not importable, or $(left) s left)"
fi

# 4. learning with what is left (a run per task and algorithm; the report gets its rows as they finish)
ALGOS=2
NTASKS=$(echo "$LEARN_TASKS" | tr ',' '\n' | grep -c .)
CAP=$((($(left) - 40) / (ALGOS * NTASKS) - 20))
if [ "$CAP" -gt 30 ]; then
  timeout $(($(left) - 10)) $PY bench/gpu.py "${BENCH_ARGS[@]}" --learn-only --worlds 4096 --learn-tasks "$LEARN_TASKS" \
    --learn-cap "$CAP" --out "$OUT/gpu_learning.md" >"$OUT/learning.log" 2>&1
  log "step 4: rc=$? (cap $CAP s per run -> gpu_learning.md)"
else
  log "step 4: skipped ($(left) s left)"
fi
log "done; results in $OUT"
