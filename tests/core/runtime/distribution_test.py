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
