#!/usr/bin/env bash
# reference_env.sh DIR PYTHON VENV_PYTHON: the reference implementations the
# importers are proven against (tests/import_weights_test.py), kept out of the
# engine's install and shared by every checkout on the machine (DIR is under
# ~/.cache by default; `make reference` calls this).
#   DIR/torch: a venv with torchvision's own GoogLeNet. PyTorch is several
#     GB, so it never enters the engine's venv; the test runs it in a
#     subprocess. torch 2.14.1 + torchvision 0.29.1 on x86_64 (a CUDA build
#     that runs on the CPU; the pair whose torchvision imports here),
#     2.9.1 + 0.24.1 on aarch64.
#   DIR/slim: tf-slim (TF-slim's own inception_v1) and tf-keras, which its
#     batch normalisation loads, installed --target without dependencies for
#     the engine's own TensorFlow: the test puts it on PYTHONPATH of a
#     subprocess, so the engine's venv stays free of Keras.
# Each part is built once (a .installed marker); a failed build leaves none,
# says so, and exits 0: the suite then runs with the importers' proofs
# skipped (pytest -ra lists them), rather than not at all.
set -uo pipefail
dir=$1 py=$2 venv_py=$3
if [ ! -f "$dir/torch/.installed" ]; then
  case "$(uname -m)" in
    aarch64) pins="torch==2.9.1 torchvision==0.24.1" ;;
    *) pins="torch==2.14.1 torchvision==0.29.1" ;;
  esac
  echo "make: the torchvision reference ($pins) in $dir/torch, once (~5.5 GB)"
  rm -rf "$dir/torch"
  mkdir -p "$dir"
  "$py" -m venv "$dir/torch"
  # shellcheck disable=SC2086
  "$dir/torch/bin/pip" install -q $pins numpy 2>&1 | grep -v "^WARNING: Location" || true
  "$dir/torch/bin/python" -c "import torchvision.models" && touch "$dir/torch/.installed"
fi
if [ ! -f "$dir/slim/.installed" ]; then
  tf=$("$venv_py" -c "
from importlib import metadata
for name in ('tensorflow-cpu', 'tensorflow'):
  try:
    print(metadata.version(name).rsplit('.', 1)[0]); break
  except metadata.PackageNotFoundError:
    pass")
  echo "make: the TF-slim reference (tf-slim 1.1.0, tf-keras $tf) in $dir/slim"
  rm -rf "$dir/slim"
  "$venv_py" -m pip install -q --no-deps --target "$dir/slim" tf-slim==1.1.0 \
      "tf-keras~=$tf.0" 2>&1 | grep -v "^WARNING: Location" || true
  test -d "$dir/slim/tf_slim" && touch "$dir/slim/.installed"
fi
for part in torch slim; do
  if [ ! -f "$dir/$part/.installed" ]; then
    echo "make: WARNING: the $part reference could not be built in $dir/$part;" \
         "tests/import_weights_test.py will skip its proofs" >&2
  fi
done
exit 0
