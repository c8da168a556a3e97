"""The install's package layout, resolved by pip in a throw-away venv: each
TensorFlow extra brings one TensorFlow distribution, never both (issue: an
install that works on GPU machines), and without TensorFlow the commands say
in one line what to install."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests import helpers


def _name(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


class ExtrasTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    venv = os.path.join(cls.tmp, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True,
                   timeout=300)
    cls.python = os.path.join(venv, "bin", "python")
    # The three resolutions run side by side: they wait on the package
    # index (the GPU extra's CUDA wheels above all), not on the CPU.
    cls.resolutions = {spec: cls._start_resolving(spec)
                       for spec in (".[gpu,test]", ".[cpu,test]", ".")}

  @classmethod
  def _start_resolving(cls, spec: str):
    report = os.path.join(cls.tmp, f"report-{len(spec)}-{spec[2:5]}.json")
    return report, subprocess.Popen(
        [cls.python, "-m", "pip", "--disable-pip-version-check", "install",
         "--dry-run", "--quiet", "--ignore-installed", "--report", report,
         spec], cwd=helpers.ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

  @classmethod
  def tearDownClass(cls):
    for _, proc in cls.resolutions.values():
      if proc.poll() is None:
        proc.kill()
      proc.communicate()
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def pip(self, *args: str, timeout: float = 900):
    return subprocess.run(
        [self.python, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=helpers.ROOT, capture_output=True, text=True, timeout=timeout)

  def resolve(self, spec: str) -> dict:
    """The distributions `pip install SPEC` would install into an empty
    environment: {name: version}."""
    report, proc = self.resolutions[spec]
    _, stderr = proc.communicate(timeout=900)
    if proc.returncode and "No matching distribution found for tensorflow" \
        in stderr:
      self.skipTest("the package index offers no `tensorflow` wheel here "
                    "(no network to PyPI?)")
    self.assertEqual(proc.returncode, 0, stderr[-3000:])
    with open(report) as f:
      return {_name(item["metadata"]["name"]): item["metadata"]["version"]
              for item in json.load(f)["install"]}

  def assert_fast_ml_dtypes(self, names: dict):
    """TensorFlow's ml_dtypes, from 0.5.1 and below 0.7 (setup.cfg says
    why)."""
    version = tuple(int(p) for p in names["ml-dtypes"].split(".")[:2])
    self.assertBetween(version, (0, 5), (0, 6))

  def test_cpu_extra_brings_tensorflow_cpu_only(self):
    names = self.resolve(".[cpu,test]")
    self.assertIn("tensorflow-cpu", names)
    self.assertNotIn("tensorflow", names)
    self.assertIn("tensorboard", names)
    self.assert_fast_ml_dtypes(names)

  def test_gpu_extra_brings_tensorflow_with_cuda_only(self):
    names = self.resolve(".[gpu,test]")
    self.assertIn("tensorflow", names)
    self.assertIn("nvidia-cudnn-cu12", names)
    self.assertNotIn("tensorflow-cpu", names)
    self.assert_fast_ml_dtypes(names)

  def test_commands_without_tensorflow_say_what_to_install(self):
    names = self.resolve(".")
    self.assertFalse({"tensorflow", "tensorflow-cpu"} & set(names), names)
    # The base install's runtime needs, then each command.
    done = self.pip("install", "--quiet", "absl-py", "numpy")
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    env = dict(os.environ, PYTHONPATH=helpers.ROOT)
    for command in ("train.main", "train.evaluate", "train.predict"):
      run = subprocess.run([self.python, "-m", command], cwd=helpers.ROOT,
                           env=env, capture_output=True, text=True,
                           timeout=300)
      self.assertEqual(run.returncode, 2, (command, run.stderr[-2000:]))
      self.assertEqual(
          run.stderr.strip(), "error: TensorFlow is not installed; install "
          "the project with pip install -e '.[cpu]' (or '.[gpu]' on a "
          "machine with NVIDIA GPUs).", command)
