# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
SHARED_WEIGHTS := ../shared/weights/vgg16_imagenet_notop.weights.h5
# The demo uses the offline copy of VGG16's ImageNet weights when it is there, else Keras'
# download (with a clear message when offline).
DEMO_WEIGHTS := $(if $(wildcard $(SHARED_WEIGHTS)),$(SHARED_WEIGHTS),imagenet)
DEMO_DIR := data/demo

.PHONY: install gpu-venv test lint demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# A second venv for NVIDIA GPUs: Keras on JAX with CUDA 12 (KERAS_BACKEND=jax), no TensorFlow.
GPU_VENV := .venv-gpu
gpu-venv: $(GPU_VENV)/.installed

$(GPU_VENV)/.installed: requirements-gpu.txt
	python3 -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-gpu.txt
	touch $@

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

# Synthetic illustrations (nothing downloaded), then the whole pipeline, then tags for held-out
# samples shown beside their true tags.
demo: install
	$(PY) -m synthetic.demo --pipeline --data-dir $(DEMO_DIR) --weights $(DEMO_WEIGHTS)

bench: install
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m bench.speed
	$(PY) -m bench.build_limit
	$(PY) -m bench.compute_limits
	$(PY) -m bench.cache_steps
	$(PY) -m bench.scale > bench/measured/scale.md
	$(PY) -m bench.augment_cost
	$(PY) -m bench.input_speed
	$(PY) -m bench.quality_grid --only defaults seed-recipe

clean:
	rm -rf $(VENV) $(GPU_VENV) $(DEMO_DIR) bench/results
