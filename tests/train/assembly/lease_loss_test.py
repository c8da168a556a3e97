"""A run on object storage that loses its lease (train/assembly/run_lock.py)
stops: with a checkpoint and exit 75 while it still holds the folder (its
renewals failed), at once and writing nothing more once another run took
the folder over (exit 2). On TF's in-memory `ram://`, with a 20 s lease
(renewed every 5 s) instead of 60."""

import functools
import os
import re
import textwrap
import unittest
from unittest import mock

import train
from core.runtime import errors
from core.runtime import files
from tests import helpers
from train.assembly import build
from train.assembly import run_lock

FLAGS = dict(dataset="synthetic", image_size=28, global_batch_size=16,
             validation_size=64, train_examples=160, strategy="mirrored",
             num_cpu_devices=2,
             steps_per_loop=1, checkpoint_every=100_000, train_steps=2_000,
             export="none", blocks=helpers.SMALL_BLOCKS)


class LeaseLossTest(unittest.TestCase):

  def test_renewals_that_fail_stop_the_run_with_a_checkpoint(self):
    model_dir = f"ram://lease-{os.getpid()}/run"
    lease = os.path.join(model_dir, run_lock.LEASE_NAME)
    write, writes = files.write_atomic, []

    def storage_gone_after_the_first(path, *args, **kwargs):
      if path == lease:
        writes.append(path)
        if len(writes) > 1:
          raise OSError("503 Service Unavailable")
      return write(path, *args, **kwargs)

    with mock.patch.object(build, "RunLock", functools.partial(
        run_lock.RunLock, lease_seconds=20)), mock.patch.object(
            files, "write_atomic", storage_gone_after_the_first):
      with self.assertRaises(errors.Preempted) as stop:
        train.fit(model_dir=model_dir, report=lambda line: None, **FLAGS)
    step = re.fullmatch(
        r"preempted by a lost lease \(the lease on `model_dir` "
        rf"'{re.escape(model_dir)}' could not be renewed \(503 Service "
        r"Unavailable\) and expires in \d+ s; this run stops while it still "
        r"holds the folder\) at step (\d+): checkpoint saved in "
        rf"{re.escape(model_dir)}; run the same command to resume\.",
        str(stop.exception))
    self.assertIsNotNone(step, str(stop.exception))
    self.assertTrue(files.exists(os.path.join(
        model_dir, f"ckpt-{step.group(1)}.index")))
    self.assertEqual(stop.exception.exit_code, 75)

  def test_a_run_taken_over_ends_at_once_in_one_line(self):
    model_dir = "ram://taken/run"
    done = helpers.python("-c", TAKEN_OVER, model_dir)
    self.assertEqual(done.returncode, 2, done.stderr[-2000:])
    self.assertRegex(
        done.stderr.strip().splitlines()[-1],
        rf"^error: `model_dir` '{re.escape(model_dir)}' was taken over by "
        r"another run \(.*its lease expires in \d+ s unless renewed\); this "
        r"run stops now and "
        r"writes nothing more into it\.$")
    self.assertIn("training", done.stdout)  # it was taken over mid-run


class TakenOverExitTest(unittest.TestCase):

  def test_the_exit_comes_when_stderr_cannot_be_written(self):
    # After a hang-up stderr gives EIO; on a full disk ENOSPC: the line is
    # lost, the exit (and so no further write) must not be.
    done = helpers.python("-c", textwrap.dedent("""
        import sys, threading, types
        from train.assembly import build
        sys.stderr = open("/dev/full", "w")
        lock = types.SimpleNamespace(may_write=lambda: False)
        heartbeat = threading.Thread(target=build._lease_lost,
                                     args=("taken over", lock, None))
        heartbeat.start()
        heartbeat.join()
        print("still running")
        """))
    self.assertEqual(done.returncode, 2, done.stdout + done.stderr)
    self.assertNotIn("still running", done.stdout)


# Another run writes its own lease over this one's once training has begun;
# the next heartbeat sees it.
TAKEN_OVER = textwrap.dedent("""
    import functools, json, os, sys, threading, time
    import train
    from core.runtime import files
    from train.assembly import build, run_lock
    build.RunLock = functools.partial(run_lock.RunLock, lease_seconds=20)
    model_dir = sys.argv[1]
    def take_over(line):
      print(line, flush=True)
      if line.startswith("step "):
        print("training", flush=True)
        files.write_atomic(os.path.join(model_dir, run_lock.LEASE_NAME),
                           json.dumps({"pid": 4242, "host": "elsewhere",
                                       "token": "theirs",
                                       "expires": time.time() + 60}))
    train.fit(model_dir=model_dir, report=take_over, %s)
    """) % ", ".join(f"{k}={v!r}" for k, v in dict(
        FLAGS, steps_per_loop=20, device="cpu").items())
