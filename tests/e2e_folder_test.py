"""The real command on an image folder made by the test: colour images of
many sizes, JPEG and PNG, trained end to end on 2 logical CPUs; a corrupt file
named in one line, or skipped and counted."""

import json
import os

import numpy as np
import tensorflow as tf

from tests import events
from tests import helpers


MAKE_TRAIN = "configs/fashion_mnist_cpu.cfg"


def folder_flags(model_dir, data_dir, *extra):
  return [f"--model_dir={model_dir}", "--dataset=folder",
          f"--data_dir={data_dir}", "--strategy=mirrored",
          "--num_cpu_devices=2", "--image_size=32", "--global_batch_size=6",
          "--validation_size=6", "--steps_per_loop=4", "--train_steps=8",
          "--augment=crop,flip,erase", helpers.SMALL_NETWORK, *extra]


class FolderRecipeTest(tf.test.TestCase):

  def test_the_modern_recipe_trains_on_photos(self):
    # A folder's batches have no static size in the graph (the in-memory
    # sets' do): mixing, the policies, balanced weights and 10-crop testing
    # on, through the command (mixup once failed here with a TypeError that
    # the in-memory tests could not see). No accumulation: its micro-batches
    # have a static size, which would hide that.
    tmp = self.get_temp_dir()
    data = os.path.join(tmp, "recipe-photos")
    helpers.write_image_folder(data, per_class=10, splits=("train", "test"))
    done = helpers.cli(folder_flags(
        os.path.join(tmp, "recipe-run"), data, "--global_batch_size=8",
        "--norm=batch", "--norm_group_size=2", "--mixup_alpha=0.2",
        "--cutmix_alpha=1.0",
        "--augment=crop,flip,randaugment,colour", "--class_weight=balanced",
        "--test_crops=10", "--train_steps=4"))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertRegex(done.stdout.strip().splitlines()[-1],
                     r"^test accuracy \d\.\d{4} \(loss .*, 30 images, "
                     r"step 4\)$")


class FolderEndToEndTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    tmp = tf.compat.v1.test.get_temp_dir()
    cls.data = os.path.join(tmp, "photos")
    helpers.write_image_folder(cls.data, per_class=10,
                               splits=("train", "test"))
    cls.dir = os.path.join(tmp, "folder-run")
    # The accuracy recipe takes the same flags as on IDX sets: make train's
    # own flag file (medium stem, batch normalisation, flip, label
    # smoothing, moving average, test-time mirroring, best export), then
    # this data set and a few steps on top of it (and normalisation groups
    # that divide its per-replica batch of 3).
    cls.result = helpers.cli([
        f"--flagfile={os.path.join(helpers.ROOT, MAKE_TRAIN)}",
        *folder_flags(cls.dir, cls.data, "--eval_every=4",
                      "--checkpoint_every=4", "--warmup_steps=2",
                      "--ema_decay=0.9", "--weight_decay=0.01",
                      "--clip_norm=5", "--norm_group_size=3",
                      # make train's rate would teach the small network
                      # these three colours perfectly in 8 steps, leaving
                      # the misclassified grid nothing to show.
                      "--learning_rate=1e-6")])

  def test_trains_and_tests(self):
    self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])
    self.assertRegex(self.result.stdout.strip().splitlines()[-1],
                     r"^test accuracy \d\.\d{4} \(loss .*, 30 images, step "
                     r"8(, the weights of step [48])?\)$")
    self.assertIn("starting at step 0/8: 2 replica(s)", self.result.stdout)
    flags = json.load(open(os.path.join(self.dir, "manifest.json")))["flags"]
    self.assertEqual((flags["stem"], flags["label_smoothing"], flags["export"],
                      flags["augment"], flags["norm"], flags["test_mirror"]),
                     ("medium", 0.1, "best", ["crop", "flip", "erase"],
                      "batch", True))

  def test_class_names_reach_the_manifest_tensorboard_and_export(self):
    manifest = json.load(open(os.path.join(self.dir, "manifest.json")))
    self.assertEqual(manifest["data"]["class_names"], ["cat", "dog", "eel"])
    self.assertEqual(manifest["data"]["image_shape"], [None, None, 3])
    table = events.read(os.path.join(self.dir, "test"))["confusion_table"]
    texts = [v.reshape(-1)[0] for _, v in table]
    self.assertIn(b"true \\ predicted | cat | dog | eel", texts[0])
    meta = json.load(open(os.path.join(self.dir, "export", "8",
                                       "assets.extra", "metadata.json")))
    self.assertEqual(meta["class_names"], ["cat", "dog", "eel"])
    self.assertEqual((meta["weights"], meta["moving_average"]), ("best", True))
    # The misclassified grid of colour photographs, at each validation.
    grids = events.read(os.path.join(self.dir, "eval")).get("misclassified")
    self.assertEqual([step for step, _ in grids or []], [4, 8])

  def test_export_serves_any_size_and_encoded_images(self):
    loaded = tf.saved_model.load(os.path.join(self.dir, "export", "8"))
    pixels = np.full([1, 50, 70, 3], 200, np.uint8)
    out = loaded.signatures["serving_default"](images=tf.constant(pixels))
    self.assertIn(out["class_names"].numpy()[0], [b"cat", b"dog", b"eel"])
    encoded = tf.io.encode_jpeg(pixels[0]).numpy()
    out = loaded.signatures["serving_bytes"](images=tf.constant([encoded]))
    self.assertEqual(out["probabilities"].shape, [1, 3])

  def test_corrupt_file_is_one_line_or_skipped(self):
    data = os.path.join(self.get_temp_dir(), "broken")
    helpers.write_image_folder(data, per_class=10)
    bad = os.path.join(data, "train", "dog", "001.jpg")
    with open(bad, "r+b") as f:
      f.truncate(30)
    stopped = helpers.cli(folder_flags(self.get_temp_dir() + "/a", data,
                                       "--augment="))
    self.assertEqual(stopped.returncode, 2, stopped.stderr[-2000:])
    lines = stopped.stderr.strip().splitlines()
    self.assertLen(lines, 1, stopped.stderr)
    self.assertEqual(lines[0], f"error: {bad}: cannot be read or decoded as "
                     "an image; fix or remove it, or pass --skip_bad_images "
                     "to skip (and count) such images.")
    model_dir = self.get_temp_dir() + "/b"
    skipped = helpers.cli(folder_flags(model_dir, data, "--augment=",
                                       "--skip_bad_images",
                                       "--validation_size=0"))
    self.assertEqual(skipped.returncode, 0, skipped.stderr[-2000:])
    self.assertIn("unreadable images skipped", skipped.stdout)
    counts = [v for _, v in events.read(os.path.join(model_dir, "train"))[
        "skipped_images"]]
    self.assertEqual(sum(float(c) for c in counts), 2.0)  # 2 epochs of 30
