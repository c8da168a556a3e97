"""train/startup/kernels.py: oneDNN unless --deterministic, and the user's
choice wins. Each case is a fresh process, since TensorFlow reads the choice
once, at import."""

import os
import subprocess
import sys

import tensorflow as tf

from tests import conftest
from tests import helpers
from train.startup import kernels

PROBE = """
import sys
from train.startup import kernels
kernels.choose(deterministic=sys.argv[1] == "1")
import tensorflow
print(kernels.onednn_enabled())
"""


def fresh_process(code: str, *args: str, preset=None) -> str:
  """Runs `code` in a new Python whose environment has the variable only if
  `preset` is given; returns its stdout, stripped."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=helpers.ROOT)
  env.pop(kernels.VARIABLE, None)
  if preset is not None:
    env[kernels.VARIABLE] = preset
  done = subprocess.run([sys.executable, "-c", code, *args],
                        cwd=helpers.ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.strip()


def probe(deterministic: bool, preset=None) -> str:
  return fresh_process(PROBE, "1" if deterministic else "0", preset=preset)


class KernelsTest(tf.test.TestCase):

  def test_onednn_for_a_normal_run(self):
    self.assertEqual(probe(deterministic=False), "True")

  def test_tensorflows_kernels_for_a_deterministic_run(self):
    self.assertEqual(probe(deterministic=True), "False")

  def test_the_users_setting_wins(self):
    self.assertEqual(probe(deterministic=False, preset="0"), "False")
    self.assertEqual(probe(deterministic=True, preset="1"), "True")

  def test_no_choice_leaks_once_tensorflow_is_imported(self):
    # A program that imported TensorFlow and then calls train.fit: the
    # kernels are fixed already, and the commands it starts later must not
    # inherit a choice made for it.
    code = ("import os, tensorflow\n"
            "from train.startup import kernels\n"
            "kernels.choose(deterministic=False)\n"
            "print(os.environ.get(kernels.VARIABLE))\n")
    self.assertEqual(fresh_process(code), "None")

  def test_the_suite_runs_on_onednn_and_leaves_the_commands_their_choice(
      self):
    # tests/conftest.py: this process on oneDNN, and the variable taken back
    # out of the environment the commands inherit (unless set outside).
    users = conftest.USERS_KERNELS
    self.assertEqual(kernels.onednn_enabled(), users != "0")
    self.assertEqual(os.environ.get(kernels.VARIABLE), users)


if __name__ == "__main__":
  tf.test.main()
