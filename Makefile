# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
SHARED_WEIGHTS := ../shared/weights/vgg16_imagenet_notop.weights.h5
# The demo uses the offline copy of VGG16's ImageNet weights when it is there.
DEMO_WEIGHTS := $(if $(wildcard $(SHARED_WEIGHTS)),$(SHARED_WEIGHTS),none)
DEMO_DIR := data/demo
DEMO_POSTS := 600
DEMO_SAMPLES := 8
DEMO_EPOCHS := 5

.PHONY: install test lint demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

# Synthetic illustrations (nothing downloaded), then the whole pipeline, then tags for held-out
# samples shown beside their true tags.
demo: install
	$(PY) -m alti2v.synthetic --out $(DEMO_DIR)/imgs --count $(DEMO_POSTS) --seed 0
	$(PY) -m alti2v.synthetic --out $(DEMO_DIR)/samples --count $(DEMO_SAMPLES) --seed 1
	$(PY) alt_i2v.py --data-dir $(DEMO_DIR) --maeshori --build --train \
		--epochs $(DEMO_EPOCHS) --weights $(DEMO_WEIGHTS)
	$(PY) -m alti2v.demo --data-dir $(DEMO_DIR) --samples $(DEMO_DIR)/samples

bench: install
	$(PY) -m bench.speed
	$(PY) -m bench.quality_grid --only default raw

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench/results
