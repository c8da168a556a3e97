#!/usr/bin/env bash
# ensure_venv.sh PYTHON: makes sure PYTHON can create a virtual environment.
# Stock Debian ships python3 without venv's ensurepip (package python3-venv);
# install it the way the data set is installed, or stop with one line.
set -u
py=${1:-python3}
if "$py" -c "import ensurepip, venv" >/dev/null 2>&1; then
  exit 0
fi
version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "Installing Debian's python3-venv ..."
bash "$(dirname "$0")/apt_install.sh" "python$version-venv" python3-venv &&
  "$py" -c "import ensurepip, venv" >/dev/null 2>&1 && exit 0
echo "error: $py cannot create a virtual environment; install Debian's python3-venv (sudo apt-get install python3-venv) and run make again." >&2
exit 1
