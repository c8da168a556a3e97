"""The benchmark tools run end to end and report sanely."""

import json
import statistics

import tensorflow as tf

from tests import helpers


class EngineContenderTest(tf.test.TestCase):

  def test_two_replica_engine_windows(self):
    # 28x28, 2 logical CPUs, 1 warm-up step, 2 timed windows of 1 step.
    done = helpers.python("-m", "bench.contenders", "engine", "28", "2", "1",
                          "2", "1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertEqual(report["params"], 6_395_598)  # GOOGLENET.md, 28x28x1
    self.assertLen(report["windows"], 2)
    self.assertTrue(all(rate > 0 for rate in report["windows"]))
    self.assertAlmostEqual(report["images_per_second"],
                           statistics.median(report["windows"]))
    self.assertGreater(report["peak_rss_mib"], 100)


class OpProfileTest(tf.test.TestCase):

  def test_ranks_the_step_kernels(self):
    done = helpers.python("-m", "bench.op_profile", "28", "1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    rows = {line.split()[0]: line.split()[1:]
            for line in done.stdout.splitlines()[2:]}
    # One fused Adam kernel per trainable variable per step.
    self.assertEqual(rows["ResourceApplyAdam"][1], "128")
    self.assertGreater(float(rows["ResourceApplyAdam"][0]), 0)
