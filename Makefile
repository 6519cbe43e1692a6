# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_WEIGHTS := ../shared/weights/vgg16_imagenet_notop.weights.h5
# The demo uses the offline copy of VGG16's ImageNet weights when it is there, else Keras'
# download (with a clear message when offline).
DEMO_WEIGHTS := $(if $(wildcard $(SHARED_WEIGHTS)),$(SHARED_WEIGHTS),imagenet)
DEMO_DIR := data/demo

.PHONY: install gpu-venv tag-venv lock check-wheels test lint demo bench clean

install: $(VENV)/.installed

# Versions come from constraints.txt, the set CI passed with (`make lock` renews it); the lower
# bounds stay in requirements.txt for installing into an environment of one's own.
$(VENV)/.installed: requirements.txt constraints.txt
	@$(PYTHON) tools/check_python.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

# The recipe of a venv beside .venv: the target is <venv>/.installed, its first prerequisite the
# requirements file, installed at constraints.txt's versions.
define other_venv
@$(PYTHON) tools/check_python.py
$(PYTHON) -m venv $(@D)
$(@D)/bin/pip install --quiet --disable-pip-version-check -r $< -c constraints.txt
touch $@
endef

# A second venv for NVIDIA GPUs: Keras on JAX with CUDA 12 (KERAS_BACKEND=jax), no TensorFlow.
GPU_VENV := .venv-gpu
gpu-venv: $(GPU_VENV)/.installed

$(GPU_VENV)/.installed: requirements-gpu.txt constraints.txt
	$(other_venv)

# A tag-only venv: --pred with WD-layout folders (an --export, a downloaded WD tagger) in
# onnxruntime, no TensorFlow or Keras: .venv-tag/bin/python alt_i2v.py --pred ... --model DIR
TAG_VENV := .venv-tag
tag-venv: $(TAG_VENV)/.installed

$(TAG_VENV)/.installed: requirements-tag.txt constraints.txt
	$(other_venv)

# Renew constraints.txt: today's newest releases within requirements.txt, for every platform
# and Python 3.11 on (uv resolves for all of them at once); then run `make test` and commit.
lock: install
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip compile requirements.txt --universal --python-version 3.11 \
		--upgrade --quiet -o constraints.txt

# Whether requirements.txt installs from wheels alone (no compiler) where people run it.
WHEEL_TARGETS := 3.11:x86_64-manylinux_2_28 3.12:x86_64-manylinux_2_28 \
	3.13:x86_64-manylinux_2_28 3.12:aarch64-manylinux_2_28 3.13:aarch64-manylinux_2_28 \
	3.12:aarch64-apple-darwin 3.13:aarch64-apple-darwin 3.13:x86_64-pc-windows-msvc
check-wheels: install
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	@for target in $(WHEEL_TARGETS); do \
		python=$${target%%:*}; platform=$${target#*:}; \
		$(VENV)/bin/uv pip compile requirements.txt --python-version $$python \
			--python-platform $$platform --only-binary :all: --quiet -o /dev/null \
			&& echo "wheels only: Python $$python on $$platform: resolves" || exit 1; \
	done

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
	$(PY) -m bench.precision
	$(PY) -m bench.step_profile
	$(PY) -m bench.export
	$(PY) -m bench.tag_install
	$(PY) -m bench.quality_grid --only defaults seed-recipe

clean:
	rm -rf $(VENV) $(GPU_VENV) $(TAG_VENV) $(DEMO_DIR) bench/results
