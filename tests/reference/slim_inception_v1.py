"""TF-slim's own inception_v1, for tests/import_weights_test.py: run with the
engine's Python and the reference's tf-slim on PYTHONPATH
(tools/reference_env.sh), never imported by the engine or its tests.

  python slim_inception_v1.py OUT_DIR IMAGES.npy

Builds `tf_slim.nets.inception_v1` (1,001 classes, `inception_v1_arg_scope`:
batch normalisation without a scale, eps 0.001) in a TF1 graph, randomises
its variables (batch-normalisation offsets and statistics included, seed 0),
saves them with a Saver under slim's names, in the V1 single-file format of
the published inception_v1_2016_08_28 checkpoint (OUT_DIR/inception_v1.ckpt)
and in V2 (OUT_DIR/v2/inception_v1.ckpt), and writes the logits of the
uint8 NHWC batch with slim's Inception preprocessing at the images' own
size (pixels to [-1, 1]; no crop or resize): OUT_DIR/slim.npz.
"""

import os
import sys

import numpy as np
import tensorflow as tf

tf.compat.v1.disable_eager_execution()
# TF 2.21 loads tf.compat.v1.layers' batch normalisation (which slim's
# batch_norm uses) from tf_keras.legacy_tf_layers; tf-keras 2.21 keeps it
# under src/.
import tf_keras.src.legacy_tf_layers  # pylint: disable=g-import-not-at-top
sys.modules["tf_keras.legacy_tf_layers"] = tf_keras.src.legacy_tf_layers
import tf_slim as slim  # pylint: disable=g-import-not-at-top
from tf_slim.nets import inception_v1  # pylint: disable=g-import-not-at-top


def main(out_dir: str, image_file: str) -> None:
  images = np.load(image_file)
  rng = np.random.default_rng(0)
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(0)
    x = tf.compat.v1.placeholder(tf.float32, [None, *images.shape[1:]])
    with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
      logits, _ = inception_v1.inception_v1(x, num_classes=1001,
                                            is_training=False)
    variables = tf.compat.v1.global_variables()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for v in variables:
        shape, name = v.shape.as_list(), v.op.name
        if name.endswith("moving_variance"):
          value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(("beta", "moving_mean", "biases")):
          value = rng.normal(0.0, 0.2, shape)
        else:
          continue
        v.load(value.astype(np.float32), sess)
      v1 = tf.compat.v1.train.Saver(
          write_version=tf.compat.v1.train.SaverDef.V1)
      v1.save(sess, os.path.join(out_dir, "inception_v1.ckpt"),
              write_meta_graph=False)
      os.makedirs(os.path.join(out_dir, "v2"))
      tf.compat.v1.train.Saver().save(
          sess, os.path.join(out_dir, "v2", "inception_v1.ckpt"),
          write_meta_graph=False)
      # inception_preprocessing.preprocess_for_eval, at the images' size.
      scaled = (images.astype(np.float32) / 255.0 - 0.5) * 2.0
      out = sess.run(logits, {x: scaled})
  np.savez(os.path.join(out_dir, "slim.npz"), logits=out)
  print(f"tf-slim on TF {tf.__version__}: {len(variables)} variables")


if __name__ == "__main__":
  main(*sys.argv[1:])
