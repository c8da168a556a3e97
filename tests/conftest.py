"""Test session set-up: two logical CPU devices before any TF op runs, so
MirroredStrategy tests have two replicas on any machine (public tf.config).

The tests that count 2 replicas or compare CPU results bitwise pin the CPU
explicitly, so a GPU machine runs the same suite: this process hides its
GPUs from TensorFlow (`tf.config.set_visible_devices`, below), the training
commands the tests start run with `--device=cpu` (tests/helpers.py), and
the snippets they run in fresh processes get CUDA_VISIBLE_DEVICES="". No
device variable is set for the whole session, so a test of the GPU path
(skipped here, where there is none) sees the machine's GPUs; TMPDIR is, to
the process's own temporary folder (tests/temp_root.py).
"""

import os

from tests import temp_root
from train.startup import kernels
from train.startup import native_stderr

# Every temporary folder of this process and of the commands it starts goes
# into one folder of its own, removed at the process's exit
# (tests/temp_root.py), TensorFlow's included: made before TF's import.
temp_root.enter(leave_at_exit=True)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# oneDNN's kernels for the tests that run in this process, as the commands use
# them (train/startup/kernels.py): on a CPU where TensorFlow would not choose
# them itself they halve the time of every in-process step. TensorFlow reads the
# variable once, at import; it is then taken back out of the environment, so the
# commands the tests start choose their kernels as a user's would (Eigen for
# --deterministic). A value set outside the suite is kept, and inherited.
USERS_KERNELS = os.environ.get(kernels.VARIABLE)
kernels.choose(deterministic=False)
# Without TensorFlow's C++ start-up lines, which ignore TF_CPP_MIN_LOG_LEVEL
# and which pytest-xdist's processes would print under the suite's summary.
native_stderr.import_tensorflow_quietly()
import tensorflow as tf  # pylint: disable=g-import-not-at-top
if USERS_KERNELS is None:
  del os.environ[kernels.VARIABLE]

NUM_CPU_DEVICES = 2
tf.config.set_visible_devices([], "GPU")
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * NUM_CPU_DEVICES)



# The files that start real training commands, roughly longest first.
# `make test` runs two processes that take a file at a time in collection
# order (--no-loadscope-reorder; pytest-xdist would otherwise start with
# the files that have the most tests): starting the long files first leaves
# short ones for the end, so one process does not run a long file alone
# while the other idles (the suite's tail was 8 minutes of one process).
LONG_FILES_FIRST = (
    "multi_worker_test.py", "fault_test.py", "fault_sigterm_test.py",
    "e2e_streamed_resume_test.py", "distribution_test.py", "e2e_test.py",
    "e2e_folder_test.py", "resume_refusal_test.py",
    "imagenet_rehearsal_test.py", "bench_contenders_test.py",
    "train/loop/step_test.py", "train/artefacts/export_test.py",
    "packaging_test.py", "train/main_test.py", "evaluate_predict_test.py",
    "import_weights_test.py",
    "core/streaming_memory_test.py", "object_storage_data_test.py",
    "recipe_resume_test.py", "plateau_early_stop_test.py")


def pytest_collection_modifyitems(session, config, items):
  """tf.test.TestCase carries `test_session`, a deprecated context manager
  whose name makes pytest's unittest collector take it for a test that then
  skips itself ("Not a test."). It is not ours and tests nothing: drop it.
  The long files go first (LONG_FILES_FIRST), the rest keep their order."""
  del session, config
  here = os.path.dirname(os.path.abspath(__file__))
  rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
  items[:] = sorted(
      (item for item in items if item.name != "test_session"),
      key=lambda item: rank.get(os.path.relpath(str(item.fspath), here),
                                len(rank)))
