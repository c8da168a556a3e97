#!/usr/bin/env bash
# apt_install.sh PACKAGE...: installs Debian packages where the machine allows
# it (root, or sudo without a password). Waits up to APT_LOCK_WAIT seconds
# (default 600) for apt's locks, which a machine running its own updates at
# boot holds, instead of failing at once. Exit 0 if installed, 1 if not.
set -u
command -v apt-get >/dev/null 2>&1 || exit 1
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
wait="-o DPkg::Lock::Timeout=${APT_LOCK_WAIT:-600}"
$sudo apt-get $wait install -y -qq "$@" >/dev/null 2>&1 || {
  $sudo apt-get $wait update -qq >/dev/null 2>&1
  $sudo apt-get $wait install -y -qq "$@" >/dev/null 2>&1
}
