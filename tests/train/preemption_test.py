import os
import signal

import tensorflow as tf
from absl.testing import parameterized

from train.preemption import PreemptionWatcher


class PreemptionWatcherTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(signal.SIGTERM, signal.SIGINT)
  def test_signal_is_recorded_not_fatal(self, sig):
    with PreemptionWatcher() as watcher:
      self.assertFalse(watcher.requested)
      os.kill(os.getpid(), sig)  # without the watcher: death or Ctrl-C
      self.assertTrue(watcher.requested)
      self.assertEqual(watcher.signal, sig)

  def test_previous_handlers_restored(self):
    before = signal.getsignal(signal.SIGTERM)
    with PreemptionWatcher():
      self.assertIsNot(signal.getsignal(signal.SIGTERM), before)
    self.assertIs(signal.getsignal(signal.SIGTERM), before)
