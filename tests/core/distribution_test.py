import tensorflow as tf

from core import distribution
from core.errors import InputError
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
    distribution.configure_cpu_devices(2)  # what conftest set: fine

  def test_logical_devices_get_equal_shares_of_the_cores(self):
    done = helpers.python(
        "-c", "import os, tensorflow as tf\n"
        "from core import distribution\n"
        "distribution.configure_cpu_devices(2)\n"
        "print(len(os.sched_getaffinity(0)),\n"
        "      len(tf.config.list_logical_devices('CPU')),\n"
        "      tf.config.threading.get_intra_op_parallelism_threads(),\n"
        "      tf.config.threading.get_inter_op_parallelism_threads())\n")
    self.assertEqual(done.returncode, 0, done.stderr)
    cores, devices, intra, inter = map(int, done.stdout.split())
    self.assertEqual((devices, intra, inter), (2, max(1, cores // 2), 2))

  def test_configure_after_start_with_other_count(self):
    with self.assertRaisesRegex(InputError, "already initialised with 2 CPU "
                                "devices"):
      distribution.configure_cpu_devices(3)

  def test_replica_offsets(self):
    strategy = distribution.make_strategy("mirrored")
    got = strategy.run(tf.function(lambda: distribution.replica_row_offset(4)))
    self.assertAllEqual(strategy.experimental_local_results(got), [0, 4])

  def test_check_divisible(self):
    strategy = distribution.make_strategy("mirrored")
    self.assertEqual(distribution.check_divisible(64, strategy), 32)
    with self.assertRaisesRegex(InputError, r"`global_batch_size` must be "
                                r"divisible by the number of replicas \(2\); "
                                r"received global_batch_size=7"):
      distribution.check_divisible(7, strategy)

  def test_errors(self):
    with self.assertRaisesRegex(InputError, "`strategy` must be one of"):
      distribution.make_strategy("tpu")
    with self.assertRaisesRegex(InputError, "`num_cpu_devices` must be a "
                                "positive integer"):
      distribution.configure_cpu_devices(0)
