"""TF_CONFIG parsing, the chief, and naming the lost task in TF's errors."""

import json
import unittest

from core.runtime import cluster
from core.runtime.errors import InputError

TWO = {"cluster": {"worker": ["h0:2222", "h1:2222"]},
       "task": {"type": "worker", "index": 1}}


def parse(config):
  text = config if isinstance(config, str) else json.dumps(config)
  return cluster.from_environment({"TF_CONFIG": text})


class FromEnvironmentTest(unittest.TestCase):

  def test_workers_without_a_chief(self):
    c = parse(TWO)
    self.assertEqual((c.task_type, c.task_index, c.num_workers), ("worker", 1,
                                                                   2))
    self.assertFalse(c.is_chief)
    self.assertEqual(c.name, "worker 1 (h1:2222)")
    self.assertTrue(parse(dict(TWO, task={"type": "worker", "index": 0}))
                    .is_chief)

  def test_a_chief_is_the_writer(self):
    config = {"cluster": {"chief": ["c:1"], "worker": ["w:1"]},
              "task": {"type": "worker", "index": 0}}
    self.assertFalse(parse(config).is_chief)
    self.assertEqual(parse(config).num_workers, 2)
    self.assertTrue(parse(dict(config, task={"type": "chief"})).is_chief)

  def test_each_mistake_is_one_line(self):
    bad = [
        ("", "needs TF_CONFIG"),
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ({"task": {"type": "worker"}}, "at least one \"worker\""),
        ({"cluster": {"worker": "h:1"}, "task": {"type": "worker"}},
         "list of host:port"),
        ({"cluster": {"worker": ["nohost"]}, "task": {"type": "worker"}},
         "list of host:port"),
        ({"cluster": {"worker": ["h:1", "h:1"]}, "task": {"type": "worker"}},
         "twice"),
        ({"cluster": {"worker": ["h:1"], "ps": ["p:1"]},
          "task": {"type": "worker"}}, "'ps' job"),
        ({"cluster": {"worker": ["h:1"], "chief": ["a:1", "b:1"]},
          "task": {"type": "chief"}}, "one chief"),
        ({"cluster": {"worker": ["h:1"]}}, "needs \"task\""),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator"}},
         "not a job"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker",
                                                   "index": 1}},
         r"index 1 is not in \[0, 1\)"),
    ]
    for config, message in bad:
      with self.subTest(config=config):
        with self.assertRaisesRegex(InputError, message) as caught:
          parse(config)
        self.assertNotIn("\n", str(caught.exception))


class LostTasksTest(unittest.TestCase):
  """Messages as TF 2.21 printed them in probes here (kill -9 and SIGSTOP
  of a peer)."""

  def test_a_connection_reset_names_the_peer(self):
    message = ("Collective ops is aborted by: recvmsg:Connection reset by "
               "peer\nAdditional GRPC error information from remote target "
               "/job:worker/replica:0/task:1 while calling /tensorflow."
               "WorkerService/RecvBuf:")
    self.assertEqual(cluster.lost_tasks(parse(dict(TWO, task={
        "type": "worker", "index": 0})), message), ["worker 1 (h1:2222)"])

  def test_heartbeats_name_the_peer_not_this_task(self):
    message = ("Error reported from /job:worker/task:0: The following tasks "
               "are unhealthy (stopped sending heartbeats):\n"
               "/job:worker/replica:0/task:0\n")
    self.assertEqual(cluster.lost_tasks(parse(TWO), message),
                     ["worker 0 (h0:2222)"])
    self.assertEqual(cluster.lost_tasks(parse(TWO), "no task here"), [])


if __name__ == "__main__":
  unittest.main()
