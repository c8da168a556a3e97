"""Fine-tuning: --init_from loads what matches and says what starts afresh;
--trainable freezes a part, which then provably does not change and gets
no gradient; a fine-tuning run resumes as any run does."""

import glob
import json
import os
import re
import tempfile

import numpy as np
import tensorflow as tf

import train
from core.data import datasets
from core.runtime import files
from core.runtime.errors import InputError
from layers.googlenet import GoogLeNet
from tests import helpers
from train.artefacts import export as export_lib
from train.assembly import finetune
from core.optim.optimizers import slot_key

SMALL = dict(in_channels=1, image_size=28, stem="medium", norm="batch",
             blocks=helpers.SMALL_BLOCKS)


def _model(num_classes=10, seed=0, **kwargs):
  tf.random.set_seed(seed)
  return GoogLeNet(num_classes=num_classes, **dict(SMALL, **kwargs))


def _run_folder(model: GoogLeNet, step: int = 3) -> str:
  """A model_dir as a run leaves it: a checkpoint and the manifest's
  facts about the model."""
  folder = tempfile.mkdtemp()
  tf.train.Checkpoint(model=model).write(os.path.join(folder, f"ckpt-{step}"))
  flags = dict(image_size=model.image_size, stem=model.stem,
               norm=model.norm, blocks=list(model.block_names))
  data = {"num_classes": model.num_classes,
          "image_shape": [None, None, model.in_channels]}
  files.write_atomic(os.path.join(folder, "manifest.json"),
                     json.dumps({"flags": flags, "data": data}))
  return folder


def _values(model):
  return {finetune.key_of(v.name): v.numpy() for v in model.variables}


class InitFromTest(tf.test.TestCase):

  def test_a_run_of_another_class_count_loads_all_but_the_heads(self):
    source, target = _model(10, seed=1), _model(3, seed=2)
    before = _values(target)
    loaded = finetune.initialise(target, _run_folder(source))
    after, there = _values(target), _values(source)
    self.assertEqual(loaded.kind, "checkpoint ckpt-3")
    fresh = dict(loaded.fresh)
    self.assertEqual(sorted(fresh), [
        "aux1/classifier/bias", "aux1/classifier/kernel",
        "aux2/classifier/bias", "aux2/classifier/kernel",
        "classifier/bias", "classifier/kernel"])
    self.assertEqual(fresh["classifier/kernel"], "another class count")
    for key in after:
      if key in fresh:
        self.assertAllEqual(after[key], before[key])  # as initialised
      else:
        self.assertAllEqual(after[key], there[key])   # loaded
    self.assertLen(loaded.loaded, len(after) - 6)
    lines = loaded.lines()
    self.assertRegex(lines[0], rf"^init: loaded {len(after) - 6} variables "
                     r"from .* \(checkpoint ckpt-3\)$")
    self.assertEqual(lines[1], "init: 6 variables start afresh (another "
                     "class count): aux1/classifier/bias, "
                     "aux1/classifier/kernel, aux2/classifier/bias and 3 more")

  def test_heads_of_other_class_names_start_afresh_at_the_same_count(self):
    source, target = _model(3, seed=1), _model(3, seed=2)
    folder = _run_folder(source)
    manifest = json.loads(files.read_text(os.path.join(folder,
                                                       "manifest.json")))
    manifest["data"]["class_names"] = ["cat", "dog", "eel"]
    files.write_atomic(os.path.join(folder, "manifest.json"),
                       json.dumps(manifest))
    same = finetune.initialise(target, folder,
                               class_names=["cat", "dog", "eel"])
    self.assertEqual(same.fresh, ())
    other = finetune.initialise(target, folder,
                                class_names=["ant", "bee", "cow"])
    self.assertEqual(dict(other.fresh)["classifier/kernel"],
                     "other class names")
    self.assertLen(other.fresh, 6)

  def test_init_exclude_leaves_what_it_matches_afresh(self):
    source, target = _model(10, seed=1), _model(10, seed=2)
    before = _values(target)
    loaded = finetune.initialise(target, _run_folder(source),
                                 exclude="inception_4d")
    fresh = dict(loaded.fresh)
    self.assertTrue(fresh)
    self.assertTrue(all(k.startswith("inception_4d/") for k in fresh))
    self.assertEqual(set(fresh.values()), {"--init_exclude"})
    self.assertAllEqual(_values(target)["inception_4d/branch1x1/kernel"],
                        before["inception_4d/branch1x1/kernel"])

  def test_an_export_loads_the_trunk_and_main_head(self):
    source, target = _model(5, seed=1), _model(5, seed=2)
    export_dir = tempfile.mkdtemp()
    path = export_lib.export(source, export_dir, 1, image_shape=[28, 28, 1],
                             class_names=[f"c{i}" for i in range(5)])
    loaded = finetune.initialise(target, path)
    self.assertEqual(loaded.kind, "SavedModel")
    self.assertTrue(all(k.startswith(("aux1/", "aux2/"))
                        for k, _ in loaded.fresh), loaded.fresh)
    self.assertIn("an export holds the main head only",
                  dict(loaded.fresh)["aux1/classifier/kernel"])
    images = tf.constant(np.random.RandomState(0).rand(2, 28, 28, 1),
                         tf.float32)
    self.assertAllEqual(target(images, training=False).logits,
                        source(images, training=False).logits)

  def test_a_mismatch_outside_the_heads_is_one_line(self):
    source, target = _model(10, stem="paper"), _model(10)
    with self.assertRaisesRegex(
        InputError, r"^`init_from` '.*' \(checkpoint ckpt-3\) does not fit "
        r"this model: 1 variable\(s\) outside the heads do not match "
        r"\(conv1/kernel: shape \[3, 3, 1, 64\] here, \[7, 7, 1, 64\] "
        r"there\); use the same --variant, --stem, --norm, --blocks and image "
        r"channels as the source, or --init_exclude for what should start "
        r"afresh\.$"):
      finetune.initialise(target, _run_folder(source))

  def test_a_damaged_newest_checkpoint_falls_back_as_a_resume_does(self):
    older, newer, target = _model(10, seed=1), _model(10, seed=3), _model(10)
    folder = _run_folder(older, step=2)
    tf.train.Checkpoint(model=newer).write(os.path.join(folder, "ckpt-4"))
    data = glob.glob(os.path.join(folder, "ckpt-4.data-*"))[0]
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
    loaded = finetune.initialise(target, folder)
    self.assertRegex(loaded.kind, r"^checkpoint ckpt-2 \(ckpt-4 unusable: "
                     r"[^\n]+\)$")
    self.assertAllEqual(_values(target)["conv1/kernel"],
                        _values(older)["conv1/kernel"])
    os.remove(os.path.join(folder, "ckpt-2.index"))
    with self.assertRaisesRegex(InputError, r"^`init_from` '.*': none of its "
                                r"1 checkpoint\(s\) can be read \(ckpt-4 "
                                r"unusable: [^\n]+\)\.$"):
      finetune.initialise(_model(10), folder)

  def test_a_damaged_import_or_export_is_one_line(self):
    folder = tempfile.mkdtemp()
    files.write_atomic(os.path.join(folder, finetune.IMPORTED), "{not json")
    with self.assertRaisesRegex(InputError, r"^`init_from` '.*': its "
                                r"imported\.json cannot be read \("):
      finetune.initialise(_model(), folder)
    files.write_atomic(os.path.join(folder, finetune.IMPORTED), json.dumps(
        {"variant": "paper", "num_classes": 10, "image_size": 28,
         "source": "torchvision"}))
    with self.assertRaisesRegex(InputError, r"^`init_from` '.*': its weights "
                                r"cannot be read \(.*\); import them again"):
      finetune.initialise(_model(), folder)
    export = tempfile.mkdtemp()
    files.write_atomic(os.path.join(export, "saved_model.pb"), b"garbage")
    with self.assertRaisesRegex(InputError, r"^`init_from` '.*': the "
                                r"SavedModel cannot be loaded \("):
      finetune.initialise(_model(), export)

  def test_sources_that_are_nothing_of_ours_are_one_line(self):
    with self.assertRaisesRegex(InputError, "does not exist"):
      finetune.initialise(_model(), "/no/such/run")
    with self.assertRaisesRegex(InputError, "is neither a SavedModel .* nor "
                                "a training run's model_dir"):
      finetune.initialise(_model(), tempfile.mkdtemp())
    with self.assertRaisesRegex(InputError, "no variable matches"):
      finetune.initialise(_model(), "x", values=lambda path: (
          "SavedModel", {"other/kernel": np.zeros([1])}, None))


class TrainableTest(tf.test.TestCase):

  def test_what_each_choice_trains(self):
    model = _model()
    every = model.trainable_variables
    self.assertEqual(finetune.plan(model, "all").params, every)
    heads = finetune.plan(model, "head")
    self.assertEqual({finetune.layer_of(v) for v in heads.params},
                     {"classifier", "aux1", "aux2"})
    self.assertTrue(all(n.frozen for n in model.norm_layers
                        if finetune.layer_of(n.gamma) not in finetune.HEADS))
    later = finetune.plan(model, "from:inception_4d", lr_multiplier=0.1)
    self.assertEqual({finetune.layer_of(v) for v in later.params},
                     {"inception_4d", "classifier", "aux1", "aux2"})
    self.assertEqual(later.frozen, ("conv1", "conv2_reduce", "conv2",
                                    "inception_4a"))
    self.assertEqual(set(later.rate_scales.values()), {0.1})
    self.assertTrue(all("inception_4d" in k for k in later.rate_scales))
    self.assertFalse(finetune.plan(model, "all").rate_scales)
    self.assertFalse(any(n.frozen for n in model.norm_layers))

  def test_layer_decay_scales_each_layer_by_its_depth(self):
    model = _model()
    order = ("conv1", "conv2_reduce", "conv2", "inception_4a",
             "inception_4d")
    plan = finetune.plan(model, "all", lr_multiplier=0.5, layer_decay=0.8)
    for v in model.trainable_variables:
      layer = finetune.layer_of(v)
      expected = (1.0 if layer in finetune.HEADS
                  else 0.5 * 0.8 ** (len(order) - order.index(layer)))
      self.assertAlmostEqual(plan.rate_scales.get(slot_key(v), 1.0),
                             expected, msg=v.name)

  def test_rate_scales_act_on_the_update(self):
    # One SGD step (no momentum) from the same start on the same batch: the
    # gradient is the same, so each variable's update with the layer decay
    # and the pre-trained multiplier is the plain update times its scale.
    def one_step(**options):
      tf.random.set_seed(5)  # the same initial weights
      parts = helpers.parts(["/cpu:0"], steps_per_epoch=4, total_steps=4,
                            optimizer="sgd", momentum=0.0, seed=5,
                            global_batch_size=8, **options)
      before = _values(parts.model)
      parts.trainer.train(parts.trainer.iterator(datasets.synthetic(32), 0),
                          1)
      after = _values(parts.model)
      return {k: after[k] - before[k] for k in before}, parts

    plain, _ = one_step()
    scaled, parts = one_step(layer_decay=0.7, pretrained_lr_multiplier=0.5)
    scales = finetune.plan(parts.model, "all", 0.5, 0.7).rate_scales
    seen = set()
    for v in parts.model.trainable_variables:
      key = finetune.key_of(v.name)
      scale = scales.get(slot_key(v), 1.0)
      seen.add(round(scale, 6))
      self.assertGreater(np.abs(plain[key]).max(), 0, key)
      # atol: an update read back as after - before keeps float32's
      # rounding of the weight (|w| ~ 0.1: a few 1e-9).
      self.assertAllClose(scaled[key], scale * plain[key], rtol=1e-3,
                          atol=2e-8, msg=key)
    self.assertGreater(len(seen), 4)  # heads 1, then every depth's own

  def test_frozen_variables_do_not_change_and_get_no_gradient(self):
    parts = helpers.parts(["/cpu:0"], steps_per_epoch=4, total_steps=4,
                          trainable="from:inception_4d", norm="batch",
                          stem="medium", global_batch_size=8,
                          norm_group_size=4)
    model, step = parts.model, parts.trainer.step
    before = _values(model)
    frozen = {k for k in before if k.split("/")[0] in (
        "conv1", "conv2_reduce", "conv2", "inception_4a")}
    self.assertTrue(any("moving_mean" in k for k in frozen))
    parts.trainer.train(parts.trainer.iterator(datasets.synthetic(32), 0), 3)
    after = _values(model)
    for key in frozen:
      self.assertAllEqual(after[key], before[key], msg=key)
    self.assertTrue(any(not np.array_equal(after[k], before[k])
                        for k in before if k.startswith("inception_4d/")))
    self.assertLen(step.params, len([
        v for v in model.trainable_variables
        if finetune.layer_of(v) in ("inception_4d", *finetune.HEADS)]))
    self.assertLen(step.optimizer.slots, len(step.params))


class FineTuneRunTest(tf.test.TestCase):
  """Through train.fit: a folder of photos of other classes starts from a
  run's weights; the resume restores its own checkpoint and keeps the
  record."""

  def test_fine_tune_on_a_folder_then_resume(self):
    flags = dict(image_size=28, strategy="mirrored", num_cpu_devices=2,
                 global_batch_size=8, steps_per_loop=2,
                 blocks=helpers.SMALL_BLOCKS, export="none")
    source = tempfile.mkdtemp()
    train.fit(model_dir=source, dataset="synthetic", train_examples=64,
              validation_size=16, train_steps=2, report=lambda line: None,
              **flags)
    photos = tempfile.mkdtemp()
    helpers.write_image_folder(photos, channels=1, per_class=8,
                               splits=("train", "validation"))
    run, lines = tempfile.mkdtemp(), []
    train.fit(model_dir=run, dataset="folder", data_dir=photos,
              init_from=source, trainable="from:inception_4d",
              train_steps=2, report=lines.append, **flags)
    init = [line for line in lines if line.startswith("init: ")]
    self.assertRegex(init[0], rf"^init: loaded \d+ variables from "
                     rf"{re.escape(source)} \(checkpoint ckpt-2\)$")
    self.assertEqual(len(init), 2, lines)
    self.assertRegex(init[1], r"^init: 6 variables start afresh \(another "
                     r"class count\): ")
    manifest = json.loads(files.read_text(os.path.join(run,
                                                       "manifest.json")))
    self.assertEqual(manifest["initialised_from"]["source"], source)
    self.assertEqual(manifest["flags"]["trainable"], "from:inception_4d")
    resumed = []
    train.fit(model_dir=run, dataset="folder", data_dir=photos,
              init_from=source, trainable="from:inception_4d",
              train_steps=4, report=resumed.append, **flags)
    self.assertFalse([line for line in resumed if line.startswith("init:")])
    self.assertTrue(any(line.startswith("resuming at step 2/4")
                        for line in resumed), resumed)
    manifest = json.loads(files.read_text(os.path.join(run,
                                                       "manifest.json")))
    self.assertEqual(manifest["resumed_from_step"], 2)
    self.assertEqual(manifest["initialised_from"]["source"], source)


if __name__ == "__main__":
  tf.test.main()
