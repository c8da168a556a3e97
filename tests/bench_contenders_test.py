"""The benchmark tools run end to end and report sanely."""

import importlib.util
import json
import os
import re
import statistics

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from bench import keras_googlenet
from layers.googlenet import GoogLeNet
from tests import helpers
from train.startup import kernels


class EngineContenderTest(tf.test.TestCase):

  def test_two_replica_engine_windows(self):
    # 28x28, 2 logical CPUs, 1 warm-up step, 2 timed windows of 1 step.
    done = helpers.python("-m", "bench.contenders", "engine", "28", "2", "1",
                          "2", "1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertEqual(report["params"], 6_395_598)  # GOOGLENET.md, 28x28x1
    self.assertLen(report["windows"], 2)
    self.assertTrue(all(rate > 0 for rate in report["windows"]))
    self.assertAlmostEqual(report["images_per_second"],
                           statistics.median(report["windows"]))
    self.assertGreater(report["peak_rss_mib"], 100)


class PeersTest(parameterized.TestCase):

  @parameterized.parameters((224, "paper", "none", 10_327_758),
                            (28, "medium", "batch", 6_400_574))
  def test_peers_train_the_engines_network(self, size, stem, norm, params):
    count = lambda weights: sum(int(np.prod(w.shape)) for w in weights)
    engine = GoogLeNet(10, 1, size, stem=stem, norm=norm)
    self.assertEqual(count(engine.trainable_variables), params)
    keras = keras_googlenet.build(size, 10, stem=stem, norm=norm)
    self.assertEqual(count(keras.trainable_weights), params)
    if importlib.util.find_spec("torch") is not None:
      from bench import torch_googlenet  # pylint: disable=g-import-not-at-top
      torch = torch_googlenet.GoogLeNet(size, 10, stem, norm)
      self.assertEqual(sum(p.numel() for p in torch.parameters()), params)

  def test_keras_fit_at_make_trains_shape_in_bfloat16(self):
    done = helpers.python("-m", "bench.contenders", "keras_fit", "28", "2",
                          "1", "1", "1", "--precision=mixed_bfloat16",
                          "--stem=medium", "--norm=batch", "--batch=16")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertEqual((report["params"], report["precision"], report["batch"]),
                     (6_400_574, "mixed_bfloat16", 16))
    self.assertGreater(report["images_per_second"], 0)


class StepTimeTest(tf.test.TestCase):

  def test_reads_the_recipe_from_make_trains_flag_file(self):
    from bench import step_time  # pylint: disable=g-import-not-at-top
    fields, image_size, batch = step_time.recipe(
        os.path.join(helpers.ROOT, "configs/fashion_mnist_cpu.cfg"))
    self.assertEqual((image_size, batch), (28, 64))
    self.assertEqual((fields["stem"], fields["norm"], fields["augment"],
                      fields["ema_decay"]), ("medium", "batch", ("flip",),
                                             0.999))
    self.assertNotIn("model_dir", fields)

  def test_times_a_flag_files_step(self):
    flagfile = os.path.join(self.get_temp_dir(), "small.cfg")
    with open(flagfile, "w") as f:
      f.write("--global_batch_size=8\n--norm=batch\n--norm_group_size=4\n"
              f"--image_size=32\n{helpers.SMALL_NETWORK}\n")
    done = helpers.python("-m", "bench.step_time", flagfile, "2", "2", "1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    # On the command's kernels, which this process runs too (the suite
    # chooses them as the command does, tests/conftest.py): oneDNN's unless
    # the user's variable says not (an AVX2 EPYC's TensorFlow would pick its
    # own, at half the speed).
    names = "oneDNN's" if kernels.onednn_enabled() else "TensorFlow's"
    self.assertRegex(done.stdout.strip().splitlines()[-1], re.escape(
        f"{flagfile}, 2 replica(s), global batch 8, image 32: ") +
                     r"\d+\.\d ms per step, \d+\.\d images/s, "
                     + names + " kernels$")


class OpProfileTest(tf.test.TestCase):

  def test_ranks_the_step_kernels(self):
    done = helpers.python("-m", "bench.op_profile", "28", "1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    rows = {line.split()[0]: line.split()[1:]
            for line in done.stdout.splitlines()[2:]}
    # One fused Adam kernel per trainable variable per step.
    self.assertEqual(rows["ResourceApplyAdam"][1], "128")
    self.assertGreater(float(rows["ResourceApplyAdam"][0]), 0)


class InputPipelineTest(tf.test.TestCase):

  def test_times_the_training_pipeline_of_a_folder(self):
    # `make bench`'s input measurement, on a small folder: a batch of 4 at
    # 224x224, 2 batches after the warm-up. (A module import named like its
    # `batches` argument once made it fail at once.)
    from bench import input_pipeline  # pylint: disable=g-import-not-at-top
    photos = os.path.join(self.get_temp_dir(), "photos")
    helpers.write_image_folder(photos, per_class=4)
    rate = input_pipeline.pipeline_rate("folder", photos, num_batches=2,
                                        batch_size=4)
    self.assertGreater(rate, 0)

