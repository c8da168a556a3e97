#!/usr/bin/env bash
# Installs Debian's Fashion-MNIST (dataset-fashion-mnist) where it is missing
# and the machine allows it (tools/apt_install.sh waits for a held apt lock).
# Never fails the build: without the data set only the tests and jobs that
# need it are skipped or refused with a clear message.
set -u
dir=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
echo "Installing Debian's dataset-fashion-mnist ..."
bash "$(dirname "$0")/apt_install.sh" dataset-fashion-mnist ||
  echo "note: could not install dataset-fashion-mnist (needs apt-get and root or sudo); tests that need it will be skipped; or install its IDX files yourself and pass --data_dir." >&2
exit 0
