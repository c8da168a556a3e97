"""The launcher's handling of its workers' output and of its own signals,
with stand-in workers (a short Python script in place of train.main, so no
TensorFlow): output is drained to the end whatever became of the reader,
and a hang-up is passed on like SIGTERM. The real cluster is
tests/multi_worker_test.py's subject."""

import errno
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
from unittest import mock

import tensorflow as tf

from tests import helpers
from train import launch
from train.startup import cli

# Run as `<stand-in> -m train.main <flags>`: prints 800 KB (more than a pipe
# holds) after a line that is not UTF-8, then leaves a file behind; with
# --hang, waits for SIGTERM instead and exits 75 as a preempted worker does.
STAND_IN = f"""#!{sys.executable}
import os, signal, sys
if "--hang" in sys.argv:
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))
  print("ready", flush=True)
  while True:
    signal.pause()
sys.stdout.buffer.write(b"caf\\xe9\\n")
for i in range(8000):
  print(f"step {{i}}/8000 loss 2.3026 acc 0.1000 lr 1.00e-02 1234.5 img/s "
        "eta 2m00s")
open(os.path.join(os.path.dirname(__file__), f"done-{{os.getpid()}}"), "w")
"""


def start_launcher(folder: str, *flags: str) -> subprocess.Popen:
  """`train.launch --network=host --workers=2 -- FLAGS` with the stand-in
  as the workers' Python; stdout and stderr are pipes."""
  stand_in = os.path.join(folder, "worker")
  with open(stand_in, "w") as f:
    f.write(STAND_IN)
  os.chmod(stand_in, 0o755)
  code = (f"import sys; sys.executable = {stand_in!r}; from train import "
          "launch; sys.exit(launch.main(['--network=host', '--workers=2', "
          f"'--', *{list(flags)!r}]))")
  env = helpers._env()  # pylint: disable=protected-access
  return subprocess.Popen([sys.executable, "-c", code], cwd=helpers.ROOT,
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


class PrefixTest(tf.test.TestCase):

  def test_lines_are_prefixed_and_bytes_that_are_not_utf8_escaped(self):
    worker = types.SimpleNamespace(stdout=io.BytesIO(b"ok\ncaf\xe9\n"))
    shown = io.StringIO()
    with mock.patch.object(sys, "stdout", shown):
      launch._prefix(worker, "worker 1")  # pylint: disable=protected-access
    self.assertEqual(shown.getvalue(),
                     "[worker 1] ok\n[worker 1] caf\\xe9\n")

  def test_output_that_fails_is_dropped_and_the_pipe_drained(self):

    class HungUp(io.StringIO):  # a terminal gone: EIO on every write

      def write(self, text):
        raise OSError(errno.EIO, "Input/output error")

    worker = types.SimpleNamespace(stdout=io.BytesIO(b"line\n" * 1000))
    with mock.patch.object(sys, "stdout", cli.OutlivingOutput(HungUp())):
      launch._prefix(worker, "worker 0")  # pylint: disable=protected-access
    self.assertEqual(worker.stdout.read(), b"")  # read to the end


class LauncherTest(tf.test.TestCase):

  def test_workers_finish_after_the_reader_goes(self):
    # `| head -1`: the reader takes the first line and goes; the launcher's
    # threads once died, the workers blocked on full pipes, and the launcher
    # waited for them for ever.
    folder = tempfile.mkdtemp()
    launcher = start_launcher(folder)
    try:
      self.assertStartsWith(launcher.stdout.readline(), b"[launch] worker 0")
      launcher.stdout.close()
      code = launcher.wait(timeout=300)
    finally:
      if launcher.poll() is None:
        launcher.kill()
    err = launcher.stderr.read().decode()
    self.assertEqual(code, 0, err[-2000:])
    self.assertNotIn("Traceback", err)
    self.assertLen([f for f in os.listdir(folder) if f.startswith("done-")],
                   2)

  def test_a_hang_up_is_passed_on_as_sigterm(self):
    launcher = start_launcher(tempfile.mkdtemp(), "--hang")
    try:
      lines = [launcher.stdout.readline() for _ in range(4)]
      self.assertLen([l for l in lines if l.endswith(b"] ready\n")], 2)
      for _ in range(2000):  # until the launcher's handler is installed
        if launcher.poll() is not None or _catches(launcher.pid,
                                                   signal.SIGHUP):
          break
        time.sleep(0.05)
      launcher.send_signal(signal.SIGHUP)
      code = launcher.wait(timeout=300)
    finally:
      if launcher.poll() is None:
        launcher.kill()
    self.assertEqual(code, 75, launcher.stderr.read().decode()[-2000:])


def _catches(pid: int, sig: int) -> bool:
  """Whether process `pid` has a handler for `sig` (Linux's SigCgt)."""
  with open(f"/proc/{pid}/status") as f:
    caught = next(l for l in f if l.startswith("SigCgt:")).split()[1]
  return bool(int(caught, 16) >> (sig - 1) & 1)


if __name__ == "__main__":
  tf.test.main()
