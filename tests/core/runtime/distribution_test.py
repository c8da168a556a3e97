import shutil
import subprocess
import sys
import unittest
from unittest import mock

import tensorflow as tf

from core.runtime import distribution
from core.runtime.errors import InputError
from tests import helpers


class DistributionTest(tf.test.TestCase):

  def test_mirrored_uses_the_logical_cpus(self):
    strategy = distribution.make_strategy("mirrored")
    self.assertEqual(strategy.num_replicas_in_sync, 2)

  def test_one_device_and_default(self):
    self.assertEqual(distribution.make_strategy(
        "one_device").num_replicas_in_sync, 1)
    self.assertIs(distribution.make_strategy("default"),
                  tf.distribute.get_strategy())

  def test_configure_is_idempotent_after_start(self):
    distribution.configure_cpu_devices(2)  # what conftest set: no error
    self.assertLen(tf.config.list_logical_devices("CPU"), 2)

  def test_gpus_make_num_cpu_devices_a_warning(self):
    real = tf.config.list_physical_devices
    fake_gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    lines = []
    with mock.patch.object(
        tf.config, "list_physical_devices",
        side_effect=lambda kind=None: [fake_gpu] if kind == "GPU" else
        real(kind)):
      distribution.configure_cpu_devices(4, warn=lines.append)
    self.assertEqual(lines, [
        "--num_cpu_devices=4 is ignored: this machine has 1 GPU(s), and "
        "--strategy=mirrored replicates over them."])
    self.assertLen(tf.config.list_logical_devices("CPU"), 2)  # untouched

  def fake_gpus(self, count: int):
    """A device list with `count` GPUs, and what was asked of them."""
    real = tf.config.list_physical_devices
    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU")
            for i in range(count)]
    asked = []
    for patch in (
        mock.patch.object(tf.config, "list_physical_devices", side_effect=(
            lambda kind=None: gpus if kind == "GPU" else real(kind))),
        mock.patch.object(tf.config.experimental, "set_memory_growth",
                          side_effect=lambda d, on: asked.append(
                              ("growth", d.name, on))),
        mock.patch.object(tf.config, "set_visible_devices",
                          side_effect=lambda d, kind=None: asked.append(
                              ("visible", list(d), kind)))):
      patch.start()
      self.addCleanup(patch.stop)
    return asked

  def test_gpus_take_memory_as_they_need_it_by_default(self):
    asked = self.fake_gpus(2)
    self.assertEqual(distribution.configure_gpus(), 2)
    self.assertEqual(asked, [("growth", "/physical_device:GPU:0", True),
                             ("growth", "/physical_device:GPU:1", True)])

  def test_without_memory_growth_gpus_are_left_alone(self):
    asked = self.fake_gpus(2)
    self.assertEqual(distribution.configure_gpus(memory_growth=False), 2)
    self.assertEqual(asked, [])

  def test_a_cpu_run_hides_the_gpus(self):
    asked = self.fake_gpus(1)
    self.assertEqual(distribution.configure_gpus(use=False), 0)
    self.assertEqual(asked, [("visible", [], "GPU")])

  def test_no_gpus_nothing_to_do(self):
    asked = self.fake_gpus(0)
    self.assertEqual(distribution.configure_gpus(), 0)
    self.assertEqual(asked, [])

  @unittest.skipUnless(shutil.which("nvidia-smi"), "needs a GPU machine")
  def test_on_a_gpu_machine_mirrored_replicates_over_the_gpus(self):
    done = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf\n"
         "from core.runtime import distribution\n"
         "n = distribution.configure_gpus()\n"
         "gpus = tf.config.list_physical_devices('GPU')\n"
         "print(n, distribution.make_strategy('mirrored')"
         ".num_replicas_in_sync, all(tf.config.experimental."
         "get_memory_growth(g) for g in gpus))\n"],
        cwd=helpers.ROOT, env=helpers._env(),  # pylint: disable=protected-access
        capture_output=True, text=True, timeout=600)
    self.assertEqual(done.returncode, 0, done.stderr)
    gpus, replicas, growth = done.stdout.split()
    self.assertGreater(int(gpus), 0)
    self.assertEqual((replicas, growth), (gpus, "True"))

  def test_logical_devices_get_equal_shares_of_the_cores(self):
    done = helpers.python(
        "-c", "import os, tensorflow as tf\n"
        "from core.runtime import distribution\n"
        "distribution.configure_cpu_devices(2)\n"
        "print(len(os.sched_getaffinity(0)),\n"
        "      len(tf.config.list_logical_devices('CPU')),\n"
        "      tf.config.threading.get_intra_op_parallelism_threads(),\n"
        "      tf.config.threading.get_inter_op_parallelism_threads())\n")
    self.assertEqual(done.returncode, 0, done.stderr)
    cores, devices, intra, inter = map(int, done.stdout.split())
    self.assertEqual((devices, intra, inter), (2, max(1, cores // 2), 2))

  def test_configure_after_start_with_other_count(self):
    tf.constant(1.0).numpy()  # TF's devices are initialised from here on
    with self.assertRaisesRegex(InputError, "already initialised with 2 CPU "
                                "devices"):
      distribution.configure_cpu_devices(3)

  def test_replica_offsets(self):
    strategy = distribution.make_strategy("mirrored")
    got = strategy.run(tf.function(lambda: distribution.replica_row_offset(4)))
    self.assertAllEqual(strategy.experimental_local_results(got), [0, 4])

  def test_split_batch(self):
    strategy = distribution.make_strategy("mirrored")
    batch = distribution.split_batch(64, strategy)
    self.assertEqual((batch.global_batch_size, batch.num_replicas,
                      batch.per_replica), (64, 2, 32))
    with self.assertRaisesRegex(InputError, r"`global_batch_size` must be "
                                r"divisible by the number of replicas \(2\); "
                                r"received global_batch_size=7"):
      distribution.split_batch(7, strategy)

  def test_errors(self):
    with self.assertRaisesRegex(InputError, "`strategy` must be one of"):
      distribution.make_strategy("tpu")
    for bad in (0, True, 2.0):
      with self.assertRaisesRegex(InputError, "`num_cpu_devices` must be a "
                                  "positive integer"):
        distribution.configure_cpu_devices(bad)
