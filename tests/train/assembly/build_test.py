"""The assembler's choices: the learning-rate schedule with its warm-up."""

import os
import types
from unittest import mock

import tensorflow as tf

from core.runtime import errors
from tests.train.assembly import finetune_test
from train.assembly import build
from train.startup.config import RunConfig


class ShardsPerWorkerTest(tf.test.TestCase):

  def test_fewer_train_shards_than_workers_is_one_line(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    from core.data import tfrecords, types  # pylint: disable=g-import-not-at-top
    from core.runtime.errors import InputError  # pylint: disable=g-import-not-at-top
    info = types.DatasetInfo("tfrecord", (None, None, 3), ("a", "b"))
    one = tfrecords.RecordSplit(("d/train-00000-of-00001",), 10)
    data = types.Splits(one, tfrecords.RecordSplit((), 0),
                        tfrecords.RecordSplit((), 0), info)
    build.check_shards(data, 1)
    with self.assertRaisesRegex(
        InputError, r"^1 train-\* shard\(s\) for 2 workers: each worker "
        r"reads its own shards, so one would have none; write at least as "
        r"many shards as workers \(tools.convert --shards=N; a TFDS set: "
        r"`tfds build` with more shards\) or run fewer workers\.$"):
      build.check_shards(data, 2)
    # Indexed data (folders, IDX) is shared out by rows: any worker count.
    memory = types.Split(np.zeros([4, 2, 2, 1], np.uint8),
                         np.zeros([4], np.int32))
    build.check_shards(types.Splits(memory, memory, memory, info), 5)


class SeedTest(tf.test.TestCase):
  """`--seed` decides where a run starts and what it reads: the initial
  weights, and the order and augmentation draws of its first batch. (That
  the same seed gives the same bits in another process is the fault tests'
  subject: a killed run, restarted, ends bitwise equal to an uninterrupted
  one, tests/fault_test.py.)"""

  def start(self, seed):
    """What a fresh run of `seed` starts from, seeded as build.run seeds it:
    (initial weights, first training batch's images)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    from core.data import datasets  # pylint: disable=g-import-not-at-top
    from tests import helpers  # pylint: disable=g-import-not-at-top
    config = dict(seed=seed, global_batch_size=4,
                  augment=("crop", "flip", "erase"))
    build._seed_everything(  # pylint: disable=protected-access
        RunConfig(model_dir="/unused", **config))
    engine = helpers.parts(["/cpu:0"], steps_per_epoch=4, total_steps=4,
                           **config)
    batch = next(engine.trainer.iterator(datasets.synthetic(16), 0))
    images = engine.trainer.feed.strategy.experimental_local_results(
        batch["images"])[0]
    return ([v.numpy() for v in engine.model.trainable_variables],
            np.asarray(images))

  def test_same_seed_same_start_other_seed_other_start(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    weights, images = self.start(3)
    same_weights, same_images = self.start(3)
    other_weights, other_images = self.start(4)
    for a, b in zip(weights, same_weights):
      np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(images, same_images)
    kernel = next(i for i, v in enumerate(weights) if v.ndim == 4)
    self.assertFalse(np.array_equal(weights[kernel], other_weights[kernel]))
    self.assertFalse(np.array_equal(images, other_images))


class InitFromEverywhereTest(tf.test.TestCase):
  """Each worker of a multi-worker run reads its own copy of --init_from:
  if the copies differ the run stops in one line instead of training
  replicas that hold different weights for ever."""

  def test_workers_that_loaded_other_weights_stop(self):
    source = finetune_test._model(10, seed=1)
    folder = finetune_test._run_folder(source)
    config = types.SimpleNamespace(init_from=folder, init_exclude=None)
    votes = []

    def parts():
      return types.SimpleNamespace(model=finetune_test._model(10),
                                   weights=build.WeightSets())

    def run(agree):
      def same_everywhere(strategy, value):
        votes.append(value)
        return agree
      with mock.patch.object(build.distribution, "is_multi_worker",
                             return_value=True), mock.patch.object(
                                 build.distribution, "same_everywhere",
                                 same_everywhere):
        return build._initialise(parts(), config, [], None, lambda _: None)

    loaded = run(agree=True)
    self.assertEqual(votes, [loaded.digest])
    self.assertEqual(run(agree=True).digest, loaded.digest)  # same source
    with self.assertRaisesRegex(
        errors.ClusterError, r"^the workers loaded different weights from "
        r"`init_from` '.*' \(this one: checkpoint ckpt-3\); every worker must "
        r"read the same source"):
      run(agree=False)
    other = finetune_test._run_folder(finetune_test._model(10, seed=2))
    config.init_from = other
    self.assertNotEqual(run(agree=True).digest, loaded.digest)


class PrecisionTest(tf.test.TestCase):
  """--mixed_precision=auto: detected for a new run, the manifest's for a
  resume; an explicit precision is kept."""

  def test_auto_is_the_machines_for_a_new_run_and_the_runs_on_resume(self):
    from core.optim import precision  # pylint: disable=g-import-not-at-top
    from train.assembly import manifest  # pylint: disable=g-import-not-at-top
    from train.startup import kernels  # pylint: disable=g-import-not-at-top
    model_dir = self.get_temp_dir()
    auto = RunConfig(model_dir=model_dir, mixed_precision="auto")
    config, choice = build.with_precision(auto)
    expected = precision.fastest([], precision.cpu_flags(),
                                 kernels.onednn_enabled())
    self.assertEqual(config.mixed_precision, expected.chosen)
    self.assertEqual(choice, expected)
    # A run begun in the other precision resumes in it, wherever it runs.
    other = ("float32" if expected.chosen == "mixed_bfloat16"
             else "mixed_bfloat16")
    manifest.write(model_dir, {"fingerprint": {"mixed_precision": other}})
    config, choice = build.with_precision(auto)
    self.assertEqual((config.mixed_precision, choice.requested),
                     (other, "auto"))
    self.assertEqual(config.fingerprint["mixed_precision"], other)
    explicit = RunConfig(model_dir=model_dir,
                         mixed_precision="mixed_float16")
    self.assertEqual(build.with_precision(explicit)[0], explicit)

  def test_the_manifest_keeps_the_first_choice_and_a_fresh_start_chooses(
      self):
    # A run begun in float32, resumed with auto: float32 still, and the
    # manifest keeps why it began so. Moved aside by --start_over (another
    # image size): the new run chooses on this machine.
    import json  # pylint: disable=g-import-not-at-top
    import os  # pylint: disable=g-import-not-at-top
    from core.optim import precision  # pylint: disable=g-import-not-at-top
    from tests import helpers  # pylint: disable=g-import-not-at-top
    model_dir = os.path.join(self.get_temp_dir(), "run")
    def run(*flags):
      done = helpers.cli(helpers.small_run_flags(
          model_dir, "--validation_size=0", "--export=none", *flags))
      self.assertEqual(done.returncode, 0, done.stderr[-2000:])
      with open(os.path.join(model_dir, "manifest.json")) as f:
        return done.stdout, json.load(f)["precision"]
    _, first = run("--mixed_precision=float32", "--train_steps=2")
    self.assertEqual(first, {"requested": "float32", "chosen": "float32",
                             "why": "as asked"})
    out, resumed = run("--mixed_precision=auto", "--train_steps=4")
    self.assertIn("precision: float32 (--mixed_precision=auto: the run's "
                  "own, from its manifest)", out)
    self.assertEqual(resumed, first)
    out, fresh = run("--mixed_precision=auto", "--train_steps=2",
                     "--image_size=32", "--start_over")
    self.assertIn("starting at step 0", out)
    machine = precision.fastest([], precision.cpu_flags())
    self.assertEqual(fresh, machine._asdict())


class PrepareDirTest(tf.test.TestCase):

  def test_the_write_probe_never_takes_another_machines_name(self):
    # Containers sharing a bucket repeat pids: another one's probe, named
    # by a pid equal to ours, stays untouched (its remove would fail).
    folder = self.get_temp_dir()
    theirs = os.path.join(folder, f".write-test-{os.getpid()}")
    with open(theirs, "w") as f:
      f.write("another container's")
    build.prepare_dir(folder, "model_dir")
    self.assertEqual(sorted(os.listdir(folder)),
                     [os.path.basename(theirs)])


class ValidationNeededTest(tf.test.TestCase):
  """Options deciding by validation accuracy refuse data without a
  validation split in one line, once the files are listed (the config
  cannot know whether a folder has one)."""

  def test_plateau_and_early_stopping_without_validation(self):
    import tempfile  # pylint: disable=g-import-not-at-top
    from tests import helpers  # pylint: disable=g-import-not-at-top
    root = tempfile.mkdtemp()
    helpers.write_image_folder(root, per_class=2)  # train/ only
    base = dict(model_dir=root + "/run", dataset="folder", data_dir=root,
                validation_size=0, image_size=28)
    data = build.load_data(RunConfig(**base))
    self.assertEqual(data.validation.num_examples, 0)
    for fields, pattern in (
        (dict(lr_schedule="plateau"), r"^`lr_schedule=plateau` lowers the "
         r"rate when validation accuracy stalls, and the folder data here "
         r"has no validation split; set --validation_size or choose another "
         r"--lr_schedule\.$"),
        (dict(early_stopping=2), r"^`early_stopping` stops when validation "
         r"accuracy stalls, and the folder data here has no validation "
         r"split; set --validation_size or set --early_stopping=0\.$"),
        (dict(export="best"), r"^`export=best` chooses by validation "
         r"accuracy")):
      config = RunConfig(**base, **fields)
      build.load_data(config)  # train.evaluate and train.convert load it
      with self.subTest(**fields), self.assertRaisesRegex(errors.InputError,
                                                          pattern):
        build.check_validation(config, data)

  def test_shards_without_validation_shards(self):
    from core.data import tfrecords  # pylint: disable=g-import-not-at-top
    from core.data import types as data_types  # pylint: disable=g-import-not-at-top
    data = data_types.Splits(
        *(tfrecords.RecordSplit(files, size) for files, size
          in ((("d/train-0",), 10), ((), 0), ((), 0))),
        info=data_types.DatasetInfo("tfrecord", (None, None, 3), ("a", "b")))
    with self.assertRaisesRegex(
        errors.InputError, r"^`early_stopping` stops when validation accuracy "
        r"stalls, and the tfrecord data here has no validation split; write "
        r"validation-\* shards or set --early_stopping=0\.$"):
      build.check_validation(RunConfig(model_dir="m", dataset="tfrecord",
                                       data_dir="d", early_stopping=2), data)
