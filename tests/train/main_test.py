"""Bad input at the command line: one line on stderr, non-zero exit, no
traceback, nothing already written lost."""

import functools
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from core.runtime import errors
from core.data import idx
from tests import helpers


class MainErrorsTest(tf.test.TestCase):

  def assert_one_line_error(self, result, pattern, code=2):
    self.assertEqual(result.returncode, code, result.stderr)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertRegex(lines[0], "^error: " + pattern)
    self.assertNotIn("Traceback", result.stderr)

  def test_unknown_flag_value(self):
    self.assert_one_line_error(helpers.cli(["--optimizer=lbfgs"]),
                               "flag --optimizer=lbfgs: value should be one "
                               "of")

  def test_the_exit_code_stays_when_stderr_fails_too(self):
    # A hung-up terminal fails every write; /dev/full fails every write.
    with open("/dev/full", "w") as full:
      result = subprocess.run(
          [sys.executable, "-m", "train.main", "--optimizer=lbfgs"],
          cwd=helpers.ROOT, stderr=full, timeout=300,
          env=helpers._env())  # pylint: disable=protected-access
    self.assertEqual(result.returncode, errors.EXIT_USAGE)

  def test_unknown_flag(self):
    self.assert_one_line_error(helpers.cli(["--epoch=3"]),
                               "Unknown command line flag 'epoch'")

  def test_positional_argument(self):
    self.assert_one_line_error(helpers.cli(["train"]), "unexpected arguments")

  def test_missing_data_dir(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=mnist", "--data_dir=/nonexistent/mnist",
                     f"--model_dir={self.get_temp_dir()}/m"]),
        "`data_dir` '/nonexistent/mnist' is not a readable directory")

  def test_corrupt_idx_file(self):
    folder = os.path.join(self.get_temp_dir(), "data")
    os.makedirs(folder)
    for stem, shape in (("train-images-idx3-ubyte", [20, 28, 28]),
                        ("t10k-images-idx3-ubyte", [5, 28, 28]),
                        ("train-labels-idx1-ubyte", [20]),
                        ("t10k-labels-idx1-ubyte", [5])):
      idx.write(os.path.join(folder, stem), np.zeros(shape, np.uint8))
    with open(os.path.join(folder, "train-images-idx3-ubyte"), "r+b") as f:
      f.truncate(100)
    self.assert_one_line_error(
        helpers.cli(["--dataset=mnist", f"--data_dir={folder}",
                     f"--model_dir={self.get_temp_dir()}/m2"]),
        r".*train-images-idx3-ubyte: truncated")

  def test_unwritable_model_dir(self):
    blocker = os.path.join(self.get_temp_dir(), "file")
    open(blocker, "w").write("keep me")
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", f"--model_dir={blocker}/run"]),
        "`model_dir` .* cannot be written")
    self.assertEqual(open(blocker).read(), "keep me")

  def test_batch_not_divisible_by_replicas(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--num_cpu_devices=3",
                     "--global_batch_size=64",
                     f"--model_dir={self.get_temp_dir()}/m3"]),
        r"`global_batch_size` must be divisible by the number of replicas "
        r"\(3\)")

  def test_norm_groups_that_do_not_divide_the_replica_batch(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--num_cpu_devices=2",
                     "--global_batch_size=16", "--norm=batch",
                     "--norm_group_size=3", "--image_size=28",
                     f"--model_dir={self.get_temp_dir()}/m4"]),
        r"`norm_group_size` must divide the per-replica batch \(8: global "
        r"batch 16 over 2 replicas\); received norm_group_size=3")

  def test_other_configuration_in_model_dir_keeps_its_files(self):
    model_dir = os.path.join(self.get_temp_dir(), "taken")
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "manifest.json"), "w") as f:
      f.write('{"fingerprint": {"image_size": 96}}')
    before = {name: open(os.path.join(model_dir, name), "rb").read()
              for name in os.listdir(model_dir)}
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--image_size=28",
                     f"--model_dir={model_dir}"]),
        "`model_dir` .* holds a run with another configuration "
        r"\(.*image_size: 96 there, 28 now")
    # The refusal is decided under the run lock (so no second run can write
    # the manifest meanwhile); the lock file stays by design (run_lock.py),
    # everything that was there is untouched.
    after = {name: open(os.path.join(model_dir, name), "rb").read()
             for name in os.listdir(model_dir) if name != ".run.lock"}
    self.assertEqual(after, before)

  def test_validation_size_beyond_the_data(self):
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", "--validation_size=5000",
                     f"--model_dir={self.get_temp_dir()}/v"]),
        r"`validation_size` must be in \[0, 4096\) for synthetic, which has "
        r"4096 training images; received validation_size=5000")

  def test_unwritable_export_dir_is_found_before_training(self):
    blocker = os.path.join(self.get_temp_dir(), "export-file")
    open(blocker, "w").write("keep me")
    model_dir = os.path.join(self.get_temp_dir(), "e")
    self.assert_one_line_error(
        helpers.cli(["--dataset=synthetic", f"--model_dir={model_dir}",
                     f"--export_dir={blocker}/versions"]),
        "`export_dir` .*/export-file/versions' cannot be written")
    self.assertEqual(open(blocker).read(), "keep me")
    self.assertFalse([f for f in os.listdir(model_dir)
                      if f.startswith("ckpt")])

  def test_a_flag_file_that_is_not_utf8_is_named(self):
    flagfile = os.path.join(self.get_temp_dir(), "latin1.cfg")
    with open(flagfile, "wb") as f:
      f.write(b"--train_steps=1\n# caf\xe9\n")
    self.assert_one_line_error(
        helpers.cli([f"--flagfile={flagfile}"]),
        f"flag file {flagfile} is not UTF-8 text \\(byte 0xe9 at offset "
        r"21\); save it as UTF-8\.$")

  def test_only_check_args_checks_the_rules_too(self):
    # absl's flag exited 0 for any parsable value, a negative alpha too.
    self.assert_one_line_error(
        helpers.cli(["--mixup_alpha=-1", "--only_check_args"]),
        r"`mixup_alpha` must be a non-negative")
    done = helpers.cli([f"--flagfile={helpers.ROOT}/configs/"
                        "fashion_mnist_amx.cfg", "--only_check_args"])
    self.assertEqual((done.returncode, done.stderr), (0, ""))
    self.assert_one_line_error(helpers.cli(["--only_check_args", "stray"]),
                               "unexpected arguments stray")
    # Another command's table and arguments: train.predict needs files.
    done = helpers.python("-m", "train.predict", "--saved_model=x",
                          "--only_check_args")
    self.assert_one_line_error(done, "name at least one")
    done = helpers.python("-m", "train.predict", "--saved_model=x",
                          "--top_k=0", "--only_check_args", "a.png")
    self.assert_one_line_error(done, "`top_k`")

  def test_flagfile_and_helpfull(self):
    flagfile = os.path.join(self.get_temp_dir(), "f.cfg")
    open(flagfile, "w").write("--optimizer=nope\n")
    self.assert_one_line_error(helpers.cli([f"--flagfile={flagfile}"]),
                               "flag --optimizer=nope")
    shown = helpers.cli(["--helpfull"])
    for flag in ("--strategy", "--num_cpu_devices", "--aux_loss_weights",
                 "--image_size", "--train_steps", "--export_dir"):
      self.assertIn(flag, shown.stdout)
    self.assertIn("Linear warm-up from 0 over the first N steps, for every",
                  shown.stdout)


class FullDiskTest(tf.test.TestCase):
  """A disk that fills up mid-run: one line and exit 74, the checkpoint
  before intact; after space is freed the same command resumes and ends."""

  def setUp(self):
    super().setUp()
    self.mount = os.path.join(self.get_temp_dir(), "disk")
    os.makedirs(self.mount)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60m",
                           "tmpfs", self.mount], capture_output=True,
                          text=True)
    if done.returncode:
      self.skipTest(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    self.addCleanup(subprocess.run, ["umount", "-l", self.mount])

  def test_second_checkpoint_does_not_fit(self):
    # One checkpoint of the small network at 28x28 is 17 MB (weights and
    # two Adam slots); with 30 MiB of ballast the second does not fit in
    # 60 MiB.
    ballast = os.path.join(self.mount, "ballast")
    with open(ballast, "wb") as f:
      f.write(b"\0" * (30 << 20))
    model_dir = os.path.join(self.mount, "run")
    flags = helpers.small_run_flags(
        model_dir, "--train_steps=10", "--checkpoint_every=5",
        "--export=none")
    full = helpers.cli(flags)
    self.assertEqual(full.returncode, errors.EXIT_NO_SPACE, full.stderr)
    lines = full.stderr.strip().splitlines()
    self.assertLen(lines, 1, full.stderr)
    self.assertRegex(lines[0], rf"^error: no space left in {model_dir} for "
                     r"checkpoint 10: it needs about 17 MB and \d+ MB are "
                     r"free; the checkpoints written before are intact")
    self.assertFalse([f for f in os.listdir(model_dir) if "_temp" in f])
    os.remove(ballast)
    resumed = helpers.cli(flags)
    self.assertEqual(resumed.returncode, 0, resumed.stderr)
    self.assertIn("resuming at step 5/10", resumed.stdout)
    self.assertRegex(resumed.stdout.strip().splitlines()[-1],
                     r"^test accuracy .* step 10\)$")


# The smallest run: 4 steps of the small network on one device.
TINY_RUN = ("--dataset=synthetic", "--image_size=28", "--global_batch_size=16",
            "--validation_size=64", "--train_steps=4", "--steps_per_loop=2",
            "--strategy=one_device", helpers.SMALL_NETWORK, helpers.ON_CPU)


def tiny_run(model_dir: str, *extra: str, **stdout):
  """Runs TINY_RUN in `model_dir`; `stdout`: Popen's stdout arguments."""
  return subprocess.run(
      [sys.executable, "-m", "train.main", *TINY_RUN,
       f"--model_dir={model_dir}", *extra], cwd=helpers.ROOT,
      env=helpers._env(),  # pylint: disable=protected-access
      stderr=subprocess.PIPE, text=True, timeout=900, **stdout)


class ReaderGoneTest(tf.test.TestCase):
  """A run whose output's reader dies (train.launch killed with -9, or
  `| head`, or the ssh session gone) trains on quietly and still
  checkpoints when stopped: a progress line into the closed pipe once ended
  it with BrokenPipeError and no checkpoint (found by the launcher's kill -9
  test under load). Output that fails otherwise (a log on a full disk, a
  closed stdout) is dropped the same way."""

  def test_progress_lines_to_a_full_disk_do_not_end_the_run(self):
    model_dir = os.path.join(self.get_temp_dir(), "full-disk-log")
    with open("/dev/full", "w") as full:
      run = tiny_run(model_dir, stdout=full)
    self.assertEqual(run.returncode, 0, run.stderr[-2000:])
    self.assertNotIn("Traceback", run.stderr)
    self.assertTrue(os.path.exists(os.path.join(model_dir, "ckpt-4.index")))
    self.assertTrue(os.path.exists(os.path.join(model_dir, "export", "4",
                                                "saved_model.pb")))

  def test_a_closed_stdout_does_not_end_the_run(self):
    model_dir = os.path.join(self.get_temp_dir(), "closed-stdout")
    # `>&-`: descriptor 1 closed, so Python's sys.stdout is None.
    run = tiny_run(model_dir, "--export=none",
                   preexec_fn=functools.partial(os.close, 1))
    self.assertEqual(run.returncode, 0, run.stderr[-2000:])
    self.assertNotIn("Traceback", run.stderr)
    self.assertTrue(os.path.exists(os.path.join(model_dir, "ckpt-4.index")))

  def test_a_hang_up_after_the_reader_went_checkpoints_and_exits_75(self):
    # The ssh session goes: first the reader, then SIGHUP, which once ended
    # the run at once, with nothing since the last checkpoint saved.
    model_dir = os.path.join(self.get_temp_dir(), "reader-gone")
    run = helpers.popen(helpers.small_run_flags(
        model_dir, "--train_steps=5000", "--steps_per_loop=1",
        "--checkpoint_every=20"))
    try:
      run.stdout.readline()  # the first line: it started
      run.stdout.close()     # the reader goes
      index = os.path.join(model_dir, "ckpt-20.index")
      for _ in range(600):   # past 19 progress lines into the closed pipe
        if os.path.exists(index) or run.poll() is not None:
          break
        time.sleep(0.5)
      run.send_signal(signal.SIGHUP)
      code = run.wait(timeout=300)
      err = run.stderr.read()
      self.assertEqual(code, errors.EXIT_PREEMPTED, err[-400:])
    finally:
      if run.poll() is None:
        run.kill()
    # The stop's own checkpoint, at the step it stopped at: 20 itself when
    # the signal came before step 21 began (so not "> 20": that raced).
    step = int(re.search(r"^error: preempted by SIGHUP at step (\d+): "
                         "checkpoint saved", err, re.M).group(1))
    self.assertGreaterEqual(step, 20)
    self.assertTrue(os.path.exists(os.path.join(model_dir,
                                                f"ckpt-{step}.index")))
