import os
import signal

import tensorflow as tf
from absl.testing import parameterized

from train.loop.preemption import PreemptionWatcher


class PreemptionWatcherTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
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

  def test_on_signal_runs_at_once_on_another_thread(self):
    # The main thread may be inside one long TensorFlow call, where Python
    # runs no handler; the watcher's thread must act without it.
    import threading  # pylint: disable=g-import-not-at-top
    called = threading.Event()
    threads = []

    def on_signal():
      threads.append(threading.current_thread())
      called.set()

    with PreemptionWatcher(on_signal=on_signal):
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertTrue(called.wait(timeout=30))
    self.assertIsNot(threads[0], threading.main_thread())
    self.assertEqual(signal.set_wakeup_fd(-1), -1)  # restored on exit

  def test_reclaim_takes_sigterm_back_from_a_native_handler(self):
    # TF's coordination agent installs a C++ SIGTERM handler when a cluster
    # forms; here libc's signal() stands in for it (ignoring the signal).
    import ctypes  # pylint: disable=g-import-not-at-top
    libc = ctypes.CDLL(None)
    ignore = ctypes.c_void_p(1)  # SIG_IGN
    libc.signal.restype = ctypes.c_void_p
    with PreemptionWatcher() as watcher:
      libc.signal(signal.SIGTERM, ignore)
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertFalse(watcher.requested)  # swallowed: the hole
      watcher.reclaim()
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertTrue(watcher.requested)

  def test_a_signal_before_the_vote_exists_reaches_it_when_attached(self):
    calls = []
    with PreemptionWatcher() as watcher:
      with watcher:  # the controller enters it again: nothing changes
        pass
      self.assertIsNot(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)
      os.kill(os.getpid(), signal.SIGTERM)
      watcher.attach(lambda: calls.append("stop"))
    # Called at once by attach (the watcher's thread may call it too: the
    # vote's request may be called any number of times).
    self.assertIn("stop", calls)

  def test_a_stop_asked_for_without_a_signal_is_a_request_with_its_reason(
      self):
    calls = []
    with PreemptionWatcher() as watcher:
      self.assertFalse(watcher.requested)
      watcher.stop("the lease expires")
      self.assertTrue(watcher.requested)
      self.assertIsNone(watcher.signal)
      self.assertEqual(watcher.reason, "the lease expires")
      watcher.attach(lambda: calls.append("stop"))  # asked before: at once
      watcher.stop("again")
    self.assertEqual(calls, ["stop", "stop"])

  def test_stop_flag_ends_a_compiled_loop_before_its_next_step(self):
    from core.data import datasets  # pylint: disable=g-import-not-at-top
    from tests import helpers  # pylint: disable=g-import-not-at-top
    parts = helpers.parts(["/cpu:0", "/cpu:1"], steps_per_epoch=4,
                          total_steps=20, global_batch_size=8)
    trainer = parts.trainer
    iterator = trainer.iterator(datasets.synthetic(32), 0)
    parts.vote.request()
    trainer.loop.run(iterator, 5)
    self.assertEqual(trainer.global_step, 0)
    parts.vote.requested.assign(False)
    trainer.loop.run(iterator, 3)
    self.assertEqual(trainer.global_step, 3)
    parts.vote.request()
    result = parts.evaluator.evaluate(datasets.synthetic(16))
    self.assertEqual(result.examples, 0)
