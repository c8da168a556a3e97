"""The set-up scripts the README's two commands run: apt's lock is waited
for, and a Python without venv support is one line saying what to install."""

import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest

from tests import helpers

DPKG_LOCK = "/var/lib/dpkg/lock-frontend"


def _installed(package: str) -> bool:
  return subprocess.run(["dpkg", "-s", package], capture_output=True,
                        check=False).returncode == 0


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("apt-get")
                     and shutil.which("dpkg")
                     and _installed("dataset-fashion-mnist"),
                     "needs root, apt and dataset-fashion-mnist installed")
class AptLockTest(unittest.TestCase):
  """install_data.sh with the data 'missing' asks apt to install the
  (installed) package while this process holds apt's lock for a while, as a
  machine's boot-time updates do."""

  def run_while_locked(self, wait: str, release_after=None):
    """Runs install_data.sh while this process holds apt's lock: released
    after `release_after` seconds, or (None) once the script has ended."""
    fd = os.open(DPKG_LOCK, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    unlock = lambda: (fcntl.lockf(fd, fcntl.LOCK_UN), os.close(fd))
    release = threading.Timer(release_after or 0, unlock)
    if release_after is not None:
      release.start()
    try:
      return subprocess.run(
          ["bash", "tools/install_data.sh"], cwd=helpers.ROOT,
          env=dict(os.environ, FASHION_MNIST_DIR="/nonexistent",
                   APT_LOCK_WAIT=wait), capture_output=True, text=True,
          timeout=900)
    finally:
      if release_after is None:
        unlock()
      else:
        release.join()

  def test_a_held_lock_is_waited_for(self):
    result = self.run_while_locked("600", release_after=3)
    self.assertEqual(result.returncode, 0)
    self.assertNotIn("could not install", result.stderr)

  def test_without_waiting_the_same_lock_fails(self):
    # The lock is held until the script ends: on a loaded machine the script
    # may take longer than any fixed release time to reach apt.
    result = self.run_while_locked("0")
    self.assertIn("could not install dataset-fashion-mnist", result.stderr)


class NoVenvTest(unittest.TestCase):

  def test_a_python_without_venv_is_one_line(self):
    bin_dir = tempfile.mkdtemp()
    fake = os.path.join(bin_dir, "python3")
    with open(fake, "w") as f:  # a Python whose ensurepip is missing
      f.write("#!/bin/bash\ncase \"$2\" in *ensurepip*) exit 1;; "
              "*) echo 3.11;; esac\n")
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
    for tool in ("bash", "dirname", "id"):  # and no apt-get on the PATH
      os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
    result = subprocess.run(
        ["bash", "tools/ensure_venv.sh", fake], cwd=helpers.ROOT,
        env={"PATH": bin_dir}, capture_output=True, text=True, timeout=60)
    self.assertEqual(result.returncode, 1)
    errors = [l for l in result.stderr.splitlines() if l]
    self.assertEqual(len(errors), 1, result.stderr)
    self.assertIn("install Debian's python3-venv (sudo apt-get install "
                  "python3-venv)", errors[0])


class TensorFlowExtraTest(unittest.TestCase):
  """make installs TensorFlow's gpu extra where nvidia-smi lists a GPU."""

  def extra(self, nvidia_smi=None, **env):
    bin_dir = tempfile.mkdtemp()
    for tool in ("bash", "grep"):
      os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
    if nvidia_smi is not None:
      fake = os.path.join(bin_dir, "nvidia-smi")
      with open(fake, "w") as f:
        f.write(f"#!/bin/bash\nprintf '{nvidia_smi}'\n")
      os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
    result = subprocess.run(
        ["bash", "tools/tf_extra.sh"], cwd=helpers.ROOT,
        env=dict(env, PATH=bin_dir), capture_output=True, text=True,
        timeout=60)
    self.assertEqual(result.returncode, 0, result.stderr)
    return result.stdout.strip(), result.stderr.strip()

  def test_a_listed_gpu_chooses_gpu_and_says_so(self):
    self.assertEqual(self.extra(
        "GPU 0: NVIDIA A100 (UUID: x)\\nGPU 1: NVIDIA A100 (UUID: y)\\n"), (
            "gpu", "make: nvidia-smi lists 2 GPU(s): TensorFlow's gpu extra "
            "(TF_EXTRA=cpu for the CPU build)"))

  def test_no_nvidia_smi_or_no_gpu_chooses_cpu(self):
    for listed in (None, "No devices were found\\n"):
      with self.subTest(listed=listed):
        self.assertEqual(self.extra(listed)[0], "cpu")

  def test_tf_extra_chooses_by_hand(self):
    self.assertEqual(self.extra("GPU 0: x\\n", TF_EXTRA="cpu")[0], "cpu")


if __name__ == "__main__":
  unittest.main()
