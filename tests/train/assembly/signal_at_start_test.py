"""A signal while the run takes its folder (the lease settles for 2 s on
object storage) stops the run through the lock's release, as any other
signal does: the watcher is entered before the lock."""

import os
import tempfile
import textwrap
import unittest

from tests import helpers

TAKES_THE_LOCK_THEN_IS_SIGNALLED = textwrap.dedent("""
    import os, runpy, signal, sys
    from train.assembly import run_lock
    enter, released = run_lock.RunLock.__enter__, run_lock.RunLock.__exit__
    def enter_then_signal(self):
      got = enter(self)
      os.kill(os.getpid(), signal.SIGTERM)
      return got
    def release(self, *exc):
      print("lock released", flush=True)
      return released(self, *exc)
    run_lock.RunLock.__enter__ = enter_then_signal
    run_lock.RunLock.__exit__ = release
    sys.argv = ["train.main"] + sys.argv[1:]
    runpy.run_module("train.main", run_name="__main__")
    """)


class SignalAtStartTest(unittest.TestCase):

  def test_sigterm_as_the_lock_is_taken_stops_the_run_in_one_line(self):
    model_dir = os.path.join(tempfile.mkdtemp(), "run")
    done = helpers.python("-c", TAKES_THE_LOCK_THEN_IS_SIGNALLED,
                          *helpers.small_run_flags(model_dir),
                          "--strategy=one_device", "--train_steps=4",
                          helpers.ON_CPU)
    self.assertEqual(done.returncode, 75, done.stderr[-2000:])
    self.assertEqual(done.stderr.strip().splitlines()[-1],
                     f"error: preempted by SIGTERM at step 0: checkpoint "
                     f"saved in {model_dir}; run the same command to "
                     "resume.")
    self.assertIn("lock released", done.stdout)
    self.assertIn("ckpt-0.index", os.listdir(model_dir))
