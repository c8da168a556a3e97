"""A cluster's failures as one line: the workers that never joined, the peer
that was lost and why, and TF's error untouched without a cluster."""

import tensorflow as tf

from core.runtime import cluster as cluster_lib
from core.runtime.errors import ClusterError
from train.assembly import lost_workers

CLUSTER = cluster_lib.Cluster(
    {"worker": ("a.example:2222", "b.example:2222")}, "worker", 0)


def op_error(message):
  return tf.errors.UnavailableError(None, None, message)


class LostWorkersTest(tf.test.TestCase):

  def test_a_worker_that_never_joined_is_named(self):
    with self.assertRaisesRegex(
        ClusterError, r"^the cluster did not form within "
        r"--cluster_join_timeout=300 s: worker 1 \(b.example:2222\) did not "
        r"join; start every worker listed in TF_CONFIG\.$"):
      with lost_workers.naming_missing_workers(CLUSTER, 300):
        raise op_error("Barrier timed out. /job:worker/replica:0/task:1 "
                       "has not joined.")

  def test_a_lost_peer_is_named_with_its_reason(self):
    with self.assertRaisesRegex(
        ClusterError, r"^lost worker 1 \(b.example:2222\): its connection "
        r"closed \(the process ended\); worker 0 \(a.example:2222\) stopped "
        r"too\."):
      with lost_workers.naming_lost_workers(CLUSTER):
        raise op_error("Connection reset by peer from "
                       "/job:worker/replica:0/task:1")
    self.assertIn("heartbeats", lost_workers.reason("missed heartbeat"))
    self.assertEqual(lost_workers.first_line("\n  one\ntwo"), "one")
    self.assertEqual(lost_workers.first_line(" "), "?")

  def test_without_a_cluster_or_a_named_peer_the_error_passes(self):
    for context in (lost_workers.naming_missing_workers(None, 300),
                    lost_workers.naming_lost_workers(None),
                    lost_workers.naming_lost_workers(CLUSTER)):
      with self.assertRaises(tf.errors.UnavailableError):
        with context:
          raise op_error("something else entirely")


if __name__ == "__main__":
  tf.test.main()
