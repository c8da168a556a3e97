# Two commands do all set-up on a fresh Debian machine with Python and make:
#   make test    the whole suite
#   make train   the main job: GoogLeNet on Fashion-MNIST, sized for a 2-core CPU
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/fashion_mnist

.PHONY: help venv data test train bench tensorboard clean

help:
	@echo "make test | make train | make bench | make tensorboard | make clean"

$(VENV)/.installed: setup.cfg pyproject.toml
	@bash tools/ensure_venv.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test]'
	# TF Serving's protos, for the warm-up file's test. Without --no-deps its
	# declared dependency on `tensorflow` would install over tensorflow-cpu.
	$(PY) -m pip install -q --no-deps 'tensorflow-serving-api==2.21.*'
	touch $@

venv: $(VENV)/.installed

data:
	@bash tools/install_data.sh

# Two workers, one test file each at a time (a file's tests share set-up),
# in collection order: the long files first (tests/conftest.py).
TEST_WORKERS ?= 2
test: venv data
	$(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist=loadfile \
	    --no-loadscope-reorder --durations=30 tests

# The configuration and its measured result are in BUILD.md ("make train").
train: venv data
	$(PY) -m train.main --flagfile=configs/fashion_mnist_cpu.cfg \
	    --model_dir=$(RUN_DIR) --export_dir=$(RUN_DIR)/export

bench: venv data
	$(PY) -m pip install -q -e '.[bench]'
	-$(PY) -m pip install -q torch==2.13.0 || echo "note: PyTorch not installed; the benchmark runs without it."
	$(PY) -m bench.run
	$(PY) -m bench.input_pipeline

# Loopback unless asked (TensorBoard's own default): TB_HOST=0.0.0.0 serves
# the dashboard to every machine that can reach this one.
TB_HOST ?= localhost
tensorboard: venv
	$(VENV)/bin/tensorboard --logdir $(RUN_DIR) --host $(TB_HOST)

clean:
	rm -rf $(VENV) runs
