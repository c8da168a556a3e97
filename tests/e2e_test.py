"""The real command, end to end, on 2 logical CPU devices and small data."""

import json
import os
import tempfile

import tensorflow as tf

from tests import events
from tests import helpers
from tests.tensorboard_server import tensorboard
from train.startup import kernels

TRAIN_TAGS = ("loss/total", "loss/main", "loss/aux1", "loss/aux2",
              "accuracy/main", "accuracy/aux1", "accuracy/aux2",
              "learning_rate", "images_per_second")


class EndToEndTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Its own parent: TensorBoard's --logdir, where users keep their runs.
    cls.dir = os.path.join(tempfile.mkdtemp(), "e2e")
    flags = helpers.small_run_flags(
        cls.dir, "--train_steps=20", "--eval_every=10",
        "--checkpoint_every=10", "--histogram_every=10",
        helpers.FULL_NETWORK)  # the user's run: the paper's network
    # Its own temporary folder: what the commands leave there is checked.
    cls.tmp = tempfile.mkdtemp()
    cls.first = helpers.cli(flags, env={"TMPDIR": cls.tmp})
    cls.second = helpers.cli(flags, env={"TMPDIR": cls.tmp})

  def test_exits_cleanly_and_ends_with_test_accuracy(self):
    self.assertEqual(self.first.returncode, 0, self.first.stderr[-3000:])
    self.assertRegex(self.first.stdout.strip().splitlines()[-1],
                     r"^test accuracy \d\.\d{4} \(loss .*, 1024 images, step "
                     r"20\)$")
    self.assertIn("starting at step 0/20: 2 replica(s)", self.first.stdout)

  def test_leaves_nothing_in_its_temporary_folder(self):
    # The commands end without the interpreter's teardown (train/startup/
    # cli.leave) but run Python's exit handlers: TensorFlow's remove the
    # modules AutoGraph wrote for the training loop.
    self.assertEqual(self.first.returncode, 0)
    self.assertEqual(os.listdir(self.tmp), [])

  def test_manifest(self):
    m = json.load(open(os.path.join(self.dir, "manifest.json")))
    self.assertEqual(m["strategy"], "mirrored")
    self.assertEqual(m["num_replicas"], 2)
    self.assertEqual((m["global_batch_size"], m["per_replica_batch_size"]),
                     (16, 8))
    self.assertEqual((m["dataset"], m["image_size"], m["seed"]),
                     ("synthetic", 28, 0))
    self.assertEqual(m["tensorflow_version"], tf.__version__)
    # Not --deterministic: oneDNN's kernels unless the caller chose otherwise.
    expected = os.environ.get(kernels.VARIABLE, "1") != "0"
    self.assertEqual(m["cpu_kernels"], "oneDNN" if expected else "Eigen")
    self.assertEqual(m["flags"]["train_steps"], 20)
    self.assertEqual(m["data"], helpers.SYNTHETIC_INFO.as_dict())
    self.assertIn("git_revision", m)

  def test_train_event_tags_at_global_steps(self):
    tags = events.read(os.path.join(self.dir, "train"))
    for tag in TRAIN_TAGS:
      self.assertEqual([s for s, _ in tags[tag]], [5, 10, 15, 20], tag)

  def test_eval_event_tags(self):
    tags = events.read(os.path.join(self.dir, "eval"))
    for tag in ("loss/main", "accuracy/main"):
      self.assertEqual([s for s, _ in tags[tag]], [10, 20], tag)
    self.assertIn("confusion_matrix", tags)

  def test_tensorboard_shows_every_dashboard(self):
    """Asked of TensorBoard itself: the confusion matrix once never showed
    (its image and its table shared a tag, and TensorBoard filed the tag
    under the text plugin only) while the event files looked right."""
    with tensorboard(os.path.dirname(self.dir)) as board:
      images = board.tags("images", wait_for=("e2e/eval", "confusion_matrix"))
      self.assertIn("confusion_matrix", images.get("e2e/eval", {}), images)
      self.assertIn("confusion_matrix", images.get("e2e/test", {}), images)
      # At each validation, the misclassified images; never for the test.
      self.assertIn("misclassified", images["e2e/eval"], images)
      self.assertNotIn("misclassified", images.get("e2e/test", {}), images)
      grids = board.get("/data/plugin/images/images", run="e2e/eval",
                        tag="misclassified", sample=0)
      self.assertEqual([g["step"] for g in grids], [10, 20])
      grid = tf.io.decode_png(board.get(
          "/data/plugin/images/individualImage?" + grids[-1]["query"])).numpy()
      self.assertGreater(grid.shape[0], 96)  # tiles with their captions
      for name_colour in ((40, 160, 60), (210, 40, 40)):  # true, predicted
        self.assertTrue((grid == name_colour).all(axis=-1).any())
      text = board.tags("text", wait_for=("e2e/eval", "confusion_table"))
      self.assertIn("confusion_table", text.get("e2e/eval", {}), text)
      self.assertIn("manifest", text.get("e2e/train", {}), text)
      scalars = board.tags("scalars", wait_for=("e2e/train", "loss/total"))
      for tag in TRAIN_TAGS:
        self.assertIn(tag, scalars["e2e/train"], tag)
      self.assertIn("accuracy/main", scalars["e2e/eval"])
      shown = board.get("/data/plugin/images/images", run="e2e/eval",
                        tag="confusion_matrix", sample=0)
      png = board.get("/data/plugin/images/individualImage" + "?"
                      + shown[-1]["query"])
      self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
      histograms = board.tags("histograms",
                              wait_for=("e2e/train", "gradient_norms"))
      self.assertIn("gradient_norms", histograms["e2e/train"])
      self.assertIn("weights/googlenet/conv1/kernel", histograms["e2e/train"])
      norms = board.get("/data/plugin/histograms/histograms",
                        run="e2e/train", tag="gradient_norms")
      self.assertEqual([step for _, step, _ in norms], [10, 20])
      self.assertGreater(max(bucket[1] for bucket in norms[-1][2]), 0)
      # The HParams dashboard: this run as a session, its flags as columns
      # and its test accuracy among the metrics.
      groups = board.hparams_sessions(wait_for=("test", "accuracy/main"))
      self.assertEqual([g["name"] for g in groups], ["e2e"])
      self.assertEqual(groups[0]["hparams"]["dataset"], "synthetic")
      self.assertEqual(groups[0]["hparams"]["train_steps"], 20)
      metrics = {(m["name"]["group"], m["name"]["tag"])
                 for m in groups[0]["metricValues"]}
      self.assertIn(("test", "accuracy/main"), metrics)
      self.assertIn(("eval", "accuracy/main"), metrics)

  def test_checkpoints_numbered_by_step(self):
    self.assertTrue(os.path.exists(os.path.join(self.dir, "ckpt-20.index")))
    self.assertTrue(os.path.exists(os.path.join(self.dir, "ckpt-10.index")))

  def test_export(self):
    path = os.path.join(self.dir, "export", "20")
    fn = tf.saved_model.load(path).signatures["serving_default"]
    out = fn(images=tf.zeros([3, 28, 28, 1], tf.uint8))
    self.assertEqual(out["classes"].shape, [3])
    meta = json.load(open(os.path.join(path, "assets.extra",
                                       "metadata.json")))
    self.assertEqual(meta["global_step"], 20)
    self.assertEqual(meta["class_names"],
                     list(helpers.SYNTHETIC_INFO.class_names))
    self.assertEqual(meta["image_shape"], [28, 28, 1])

  def test_same_command_resumes_instead_of_starting_over(self):
    self.assertEqual(self.second.returncode, 0, self.second.stderr[-3000:])
    self.assertIn("resuming at step 20/20", self.second.stdout)
    self.assertNotIn("note:", self.second.stdout)  # the same flags
    self.assertNotRegex(self.second.stdout, r"^step \d+/20", )
    tags = events.read(os.path.join(self.dir, "train"))
    self.assertEqual([s for s, _ in tags["loss/total"]], [5, 10, 15, 20])
