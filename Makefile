# policylab: every target is a thin call of `python -m app`.
#   make train task=hopper [algo=ppo] [key=value ...]    make train resume=runs/...
#   make train task=humanoid train.minutes=5    (a wall-clock budget; on a CUDA machine the gpu settings)
#   make train task=hopper settings=gpu task.num_envs=256   (a backend's settings on this machine's backend)
#   make train task=humanoid nproc=4          data-parallel on 4 ranks of this machine (torchrun; a GPU each)
#   make train task=humanoid nproc=4 nnodes=2 rdzv=HOST:29400    the same on each of 2 machines (c10d)
#   make eval run=runs/... [episodes=10]      make tasks      make test [workers=2]      make test-fast
#   make render run=runs/... [episodes=3 width=640 height=480 camera=track overlay=1]
#   make plot runs="runs/a runs/b" [out=curves.png]
#   make export run=runs/...                  make deploy-sim run=runs/... [episodes=10 latency=0 noise=0]
#   make bench-speed                          make bench-learn
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# SETUP= (empty) skips the venv set-up: a machine without a package index, its python given as PY=python3.
SETUP ?= setup
# key=value arguments other than the targets' own become config overrides (algo.max_kl=0.02).
OWN_ARGS := task=% algo=% resume=% run=% runs=% out=% episodes=% checkpoint=% latency=% noise=% width=% height=% camera=% \
	overlay=% PYTHON=% PY=% SETUP=% settings=% nproc=% nnodes=% rdzv=% rdzv_id=% workers=%
OVERRIDES := $(filter-out $(OWN_ARGS),$(MAKEOVERRIDES))

.PHONY: setup train eval render plot export deploy-sim tasks test test-fast lint bench-learn bench-speed clean-venv

setup: $(VENV)/.installed

# torch is pinned and installed first: the pinned version is a CPU wheel on CPU-only
# machines and the CUDA build on GPU machines; anything unpinned would pull CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# nproc=N: N ranks per machine under torchrun (task.num_envs is per rank); nnodes=M rdzv=HOST:PORT: M machines
# meeting at HOST:PORT (torchrun's c10d rendezvous; run the same command on every machine, rdzv_id names the job).
TRAIN := $(PY) -m app
ifdef nproc
TRAIN := $(PY) -m torch.distributed.run $(if $(nnodes),--nnodes=$(nnodes) --rdzv-backend=c10d --rdzv-endpoint=$(rdzv) \
	--rdzv-id=$(or $(rdzv_id),policylab),--standalone) --nproc-per-node=$(nproc) -m app
endif

train: $(SETUP)
ifdef resume
	$(TRAIN) train --resume "$(resume)" $(OVERRIDES)
else
	$(TRAIN) train --task "$(or $(task),humanoid)" $(if $(algo),--algo "$(algo)") \
		$(if $(settings),--settings "$(settings)") $(OVERRIDES)
endif

eval: setup
	@test -n "$(run)" || { echo "usage: make eval run=runs/<task>/<run> [episodes=10]"; exit 2; }
	$(PY) -m app evaluate "$(run)" --episodes $(or $(episodes),10) --checkpoint $(or $(checkpoint),latest)

render: setup
	@test -n "$(run)" || { echo "usage: make render run=runs/<task>/<run> [episodes=3 width=640 height=480 camera=...]"; exit 2; }
	$(PY) -m app render "$(run)" --episodes $(or $(episodes),3) --width $(or $(width),640) \
		--height $(or $(height),480) --checkpoint $(or $(checkpoint),latest) $(if $(camera),--camera "$(camera)") \
		$(if $(filter 0 no false,$(overlay)),--no-overlay)

plot: setup
	@test -n "$(runs)" || { echo 'usage: make plot runs="runs/a runs/b" [out=curves.png]'; exit 2; }
	$(PY) -m app plot $(runs) $(if $(out),--out "$(out)")

export: setup
	@test -n "$(run)" || { echo "usage: make export run=runs/<task>/<run> [checkpoint=latest]"; exit 2; }
	$(PY) -m app export "$(run)" --checkpoint $(or $(checkpoint),latest)

deploy-sim: setup
	@test -n "$(run)" || { echo "usage: make deploy-sim run=runs/<task>/<run> [episodes=10 latency=0 noise=0]"; exit 2; }
	$(PY) -m app deploy-sim "$(run)" --episodes $(or $(episodes),10) --latency $(or $(latency),0) \
		--obs-noise $(or $(noise),0)

tasks: setup
	$(PY) -m app tasks

# pytest-xdist: `workers` processes (2: CI's cores; auto: one per core) share the tests, a whole file at a time
# (a module-scoped trained run is trained once), in collection order: tests/conftest.py puts the files with
# whole training runs first. workers=0: one process.
workers ?= 2
XDIST = -n $(workers) --dist loadfile --no-loadscope-reorder

test: setup
	$(PY) -m pytest -q $(XDIST)

# the inner loop: every test but those marked slow (whole learning runs, end-to-end task runs)
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(XDIST)

lint: setup
	$(PY) -m ruff check app policies envs tests bench
	$(PY) -m ruff format --check app policies envs tests bench

bench-learn: setup
	$(PY) bench/learning.py $(OVERRIDES)

# sb3-contrib (peer (e) of the table) is a benchmark-only extra, installed here and nowhere else.
bench-speed: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/speed.py

# The gpu backend on a CUDA machine (bench/gpu_results.md); no setup: that machine may have no package
# index, so it runs with the venv's python where there is one, else $(PYTHON). args="--smoke" on a CPU.
.PHONY: bench-gpu
bench-gpu:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) bench/gpu.py $(args)

clean-venv:
	rm -rf $(VENV)
