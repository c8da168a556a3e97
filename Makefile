# Two commands do all set-up on a fresh Debian machine with Python and make:
#   make test    the whole suite
#   make train   the main job: GoogLeNet on Fashion-MNIST, sized for a 2-core CPU
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/fashion_mnist

.PHONY: help venv data reference test train rehearsal bench tensorboard clean

help:
	@echo "make test | make train | make rehearsal | make bench | make tensorboard | make clean"

# TensorFlow's extra: gpu where nvidia-smi lists a GPU, else cpu (the
# script says which and why; TF_EXTRA=cpu|gpu chooses by hand). The
# optional extras the suite tests: converted models run in LiteRT and
# onnxruntime, and TensorFlow Datasets as a source.
TEST_EXTRAS := litert,onnx,tfds
$(VENV)/.installed: setup.cfg pyproject.toml
	@bash tools/ensure_venv.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	extra=$$(bash tools/tf_extra.sh) && \
	    $(PY) -m pip install -q -e ".[$$extra,test,$(TEST_EXTRAS)]"
	# TF Serving's protos, for the warm-up file's test. Without --no-deps its
	# declared dependency on `tensorflow` would install over tensorflow-cpu.
	$(PY) -m pip install -q --no-deps 'tensorflow-serving-api==2.21.*'
	touch $@

venv: $(VENV)/.installed

data:
	@bash tools/install_data.sh

# The reference implementations the weight importers are proven against
# (torchvision's and TF-slim's GoogLeNets; tools/reference_env.sh says why
# they live outside the venv), built once per machine.
REFERENCE_DIR ?= $(HOME)/.cache/googlenet-engine/reference
reference: venv
	@bash tools/reference_env.sh $(REFERENCE_DIR) $(PYTHON) $(abspath $(PY))

# Two workers, one test file each at a time (a file's tests share set-up),
# in collection order: the long files first (tests/conftest.py).
TEST_WORKERS ?= 2
test: venv data reference
	GOOGLENET_REFERENCE_DIR=$(REFERENCE_DIR) $(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist=loadfile \
	    --no-loadscope-reorder --durations=30 tests

# The configuration and its measured result are in BUILD.md ("make train").
# The flag file suits the machine (tools/recipe.py): bfloat16 with more
# steps where AMX runs it, else float32 (RECIPE=... chooses by hand).
train: venv data
	$(PY) -m train.main --flagfile=$${RECIPE:-$$($(PY) -m tools.recipe)} \
	    --model_dir=$(RUN_DIR) --export_dir=$(RUN_DIR)/export

# ImageNet's shape on this machine: 1,000 classes in TF-slim's shard layout
# (tools/imagenet_like.py: 2,000 JPEGs of varied sizes, some 3,000+ pixels
# wide; no test split, as ImageNet), the paper's GoogLeNet at 224x224 on 2
# replicas for a few steps with validations, the export, then the commands
# a user runs on the result (n00000250_249 is 3,000+ pixels wide). About
# 2 minutes on 2 cores.
REHEARSAL_DIR ?= runs/rehearsal
rehearsal: venv
	test -d $(REHEARSAL_DIR)/data || $(PY) -m tools.imagenet_like \
	    --output=$(REHEARSAL_DIR)/data --classes=1000 --train_per_class=2 \
	    --validation_images=256 --layout=shards,folder
	$(PY) -m train.main --dataset=tfrecord \
	    --data_dir=$(REHEARSAL_DIR)/data/shards --label_offset=1 \
	    --image_size=224 --strategy=mirrored --num_cpu_devices=2 \
	    --global_batch_size=16 --train_steps=8 --steps_per_loop=4 \
	    --eval_every=4 --augment=crop,flip --model_dir=$(REHEARSAL_DIR)/run
	$(PY) -m train.evaluate --model_dir=$(REHEARSAL_DIR)/run --split=validation
	$(PY) -m train.predict --saved_model=$(REHEARSAL_DIR)/run/export/8 \
	    --top_k=3 $(REHEARSAL_DIR)/data/folder/train/n00000001/n00000001_0.JPEG \
	    $(REHEARSAL_DIR)/data/folder/train/n00000250/n00000250_249.JPEG

# bench.run: the engine's command as a user runs it, its compiled loop,
# Keras `fit` and compiled PyTorch, float32 and mixed_bfloat16, at 224x224
# and at make train's shape, with TF's matmul rates and oneDNN's profile:
# about 20 minutes on 2 cores (PyTorch's first compile of each shape adds
# a few). BENCH_FLAGS=--smoke times tiny sizes of one setting (about 3).
BENCH_FLAGS ?=
bench: venv data
	$(PY) -m pip install -q -e '.[bench]'
	-$(PY) -m pip install -q torch==2.13.0 || echo "note: PyTorch not installed; the benchmark runs without it."
	$(PY) -m bench.run $(BENCH_FLAGS)
	$(PY) -m bench.input_pipeline
	$(PY) -m bench.photo_pipeline
	$(PY) -m bench.rehearsal_memory

# Loopback unless asked (TensorBoard's own default): TB_HOST=0.0.0.0 serves
# the dashboard to every machine that can reach this one.
TB_HOST ?= localhost
tensorboard: venv
	$(VENV)/bin/tensorboard --logdir $(RUN_DIR) --host $(TB_HOST)

clean:
	rm -rf $(VENV) runs
