"""The stderr filter drops decoder chatter, TF Lite's calibrator line and a
lost peer's multi-line reports (as TF 2.21 logged them in probes here), and
nothing else."""

import unittest

from tests import helpers

LOST_PEER_REPORT = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
E0000 00:00:1795797766.476695   20545 base_collective_executor.cc:252] BaseCollectiveExecutor::StartAbort UNAVAILABLE: Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):
/job:worker/replica:0/task:1
The tasks have crashed. Check the task logs for an earlier error. [type.googleapis.com/tensorflow.CoordinationServiceError='']
E0000 00:00:1795797766.476839   20545 ring_alg.cc:291] Aborting RingReduce with UNAVAILABLE: Collective ops is aborted by: heartbeats
The error could be from a previous operation. Restart your program to reset. [type.googleapis.com/tensorflow.DerivedStatus='']
"""
# TF Lite's int8 calibrator, as TF 2.21 prints it under train.convert.
CALIBRATOR = ("fully_quantize: 0, inference_type: 6, input_inference_type: "
              "FLOAT32, output_inference_type: FLOAT32\n")
KEPT = """\
E0000 00:00:1795797766.5   20545 other_module.cc:1] a real error
Traceback (most recent call last):
Corrupt-looking but not a decoder line
error: lost worker 1 (h1:2222): its connection closed
"""
CODE = """
import os, sys
from train.startup.native_stderr import NativeChatterFilter
with NativeChatterFilter():
  os.write(2, sys.stdin.buffer.read())
"""

# train.convert's use: a failure inside the block, then the command's exit
# without the interpreter's teardown (train/startup/cli.leave).
FAILING = """
import os, sys
from train.startup.native_stderr import NativeChatterFilter
try:
  with NativeChatterFilter(writers_outlive_errors=False):
    os.write(2, sys.stdin.buffer.read())
    raise ValueError
except ValueError:
  print("error: the one line", file=sys.stderr, flush=True)
os._exit(3)
"""


class FilterTest(unittest.TestCase):

  def test_lost_peer_reports_go_and_everything_else_stays(self):
    text = (LOST_PEER_REPORT + "Corrupt JPEG data: 3 extraneous bytes\n"
            + CALIBRATOR + KEPT)
    result = helpers.python_with_input(text, "-c", CODE)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stderr, KEPT)

  def test_a_failure_keeps_what_was_written_before_it(self):
    # With the filter left in place past the error (train.main's choice),
    # the pump's unsent lines died with os._exit.
    text = CALIBRATOR + KEPT * 20
    result = helpers.python_with_input(text, "-c", FAILING)
    self.assertEqual(result.returncode, 3, result.stderr)
    self.assertEqual(result.stderr, KEPT * 20 + "error: the one line\n")


if __name__ == "__main__":
  unittest.main()
