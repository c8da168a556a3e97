"""bench/run.py: the settings it times and the sizes it times them at."""

import os

from absl.testing import parameterized
import tensorflow as tf

from bench import run


class CaseTest(tf.test.TestCase):

  def test_224_is_the_paper_network_on_one_replica(self):
    case = run.case("224", "mixed_bfloat16", run.FULL, self.get_temp_dir())
    self.assertEqual(case.replicas, 1)
    self.assertEqual({k: case.fields[k] for k in (
        "image_size", "stem", "norm", "global_batch_size", "steps_per_loop",
        "mixed_precision", "dataset")}, {
            "image_size": 224, "stem": "paper", "norm": "none",
            "global_batch_size": 64, "steps_per_loop": 20,
            "mixed_precision": "mixed_bfloat16", "dataset": "synthetic"})

  def test_train_is_make_trains_flag_file_on_synthetic_images(self):
    case = run.case("train", "float32", run.FULL, self.get_temp_dir())
    self.assertEqual(case.replicas, 2)
    self.assertEqual({k: case.fields[k] for k in (
        "image_size", "stem", "norm", "global_batch_size", "steps_per_loop",
        "optimizer", "ema_decay", "dataset")}, {
            "image_size": 28, "stem": "medium", "norm": "batch",
            "global_batch_size": 64, "steps_per_loop": 50,
            "optimizer": "adam", "ema_decay": 0.999, "dataset": "synthetic"})
    # The command and bench.step_time read the same flag file.
    flagfile = case.flags[0].split("=", 1)[1]
    self.assertTrue(os.path.isfile(flagfile))

  def test_smoke_sizes_shrink_the_batch(self):
    case = run.case("train", "float32", run.SMOKE, self.get_temp_dir())
    self.assertEqual((case.fields["global_batch_size"],
                      case.fields["norm_group_size"]), (8, 4))


class SizesTest(parameterized.TestCase):

  @parameterized.parameters(("full", run.FULL), ("smoke", run.SMOKE))
  def test_every_case_has_sizes_and_whole_chunks(self, _, sizes):
    for setting in run.SETTINGS:
      self.assertIn(setting, sizes.loop)
      self.assertIn(setting, sizes.peers)
      for precision in run.PRECISIONS:
        for steps_per_loop, n in sizes.command[(setting, precision)]:
          # The longer run pays N / steps_per_loop more chunks.
          self.assertEqual(n % steps_per_loop, 0)


class TimeCommandTest(tf.test.TestCase):

  def test_the_step_is_the_steady_one_the_difference_beside_it(self):
    # Two whole runs whose start-up differed by more than the extra steps
    # cost: their difference says 0.25 s a step, the clock between the
    # progress lines 0.66 s (seen on 2026-12-06's shared host).
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from bench import command  # pylint: disable=g-import-not-at-top
    lines = lambda n: tuple((step, 10.0 + 0.66 * step)
                            for step in range(2, n + 1, 2))
    runs = {20: command.Run(20, 40.0, lines(20)),
            40: command.Run(40, 45.0, lines(40))}
    sizes = run.FULL._replace(command={("224", "mixed_bfloat16"): ((2, 20),)})
    case = run.Case("224", "mixed_bfloat16", ("--flagfile=unused",), {})
    with mock.patch.object(command, "run",
                           lambda flags, n, per_loop: runs[n]):
      row, = run.time_command(case, sizes)
    self.assertAlmostEqual(row["seconds_per_step"], 0.66)
    self.assertAlmostEqual(row["two_lengths"], 0.25)
