"""`python -m bench.profile [IMAGE_SIZE]`: where a training step's time goes.

One replica, global batch 64. Times (median of repeats) the forward pass, the
forward + backward pass, and the whole step (adds loss, all-reduce, finite
check, optimizer); then the forward pass stage by stage (stem, 3a-3b, 4a-4e
+ aux, 5a-5b + head) with each stage's achieved GFLOP/s, which shows which
feature-map sizes keep the convolution kernels busy.
"""

import statistics
import sys
import time

BATCH = 64


def timed(fn, repeats=5):
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(image_size: int) -> None:
  from bench.engines import engine_on
  from core.data import datasets
  split = datasets.synthetic(1024)
  engine, it, _ = engine_on(split, image_size=image_size, replicas=1,
                            batch=BATCH)
  import tensorflow as tf
  from bench import flops
  from core.optim import losses
  from core.data import preprocessing
  model = engine.step.model
  x = preprocessing.preprocess(tf.constant(split.images[:BATCH]),
                               image_size=image_size, channels=1)
  y = tf.constant(split.labels[:BATCH])
  variables = model.trainable_variables

  @tf.function
  def forward():
    return model(x, training=True)

  @tf.function
  def forward_backward():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(losses.googlenet_loss(model(x, training=True),
                                                  y).total)
    return tape.gradient(loss, variables)

  reps = 3 if image_size > 100 else 10
  t_fwd = timed(lambda: forward().logits.numpy(), reps)
  t_fb = timed(lambda: [g.numpy() for g in forward_backward()[:1]], reps)
  t_step = timed(lambda: engine.loop.run(it, 1), reps)
  train_gflop = flops.training_flops_per_image(flops.forward_macs(
      lambda z: model(z, training=True, reference=True),
      tf.TensorSpec([1, image_size, image_size, 1]))) * BATCH / 1e9
  print(f"image {image_size}, batch {BATCH}, one replica:")
  print(f"  forward            {t_fwd * 1e3:8.1f} ms")
  print(f"  forward + backward {t_fb * 1e3:8.1f} ms")
  print(f"  whole step         {t_step * 1e3:8.1f} ms  ({BATCH / t_step:.0f} "
        f"images/s, {train_gflop / t_step:.0f} GFLOP/s of model work)")
  print(f"  step - fwd/bwd     {(t_step - t_fb) * 1e3:8.1f} ms  (loss, "
        "finite check, optimizer, metrics, input)")

  blocks = model.blocks
  # Each stage runs its fast formulations when timed and is counted on the
  # textbook graph (reference=True), as the whole model is.
  stages = [
      ("stem conv1..pool2", lambda z, r=False: model.pool2(model.conv2(
          model.conv2_reduce(model.pool1(model.conv1(z, reference=r)),
                             reference=r), reference=r))),
      ("3a, 3b", lambda z, r=False: blocks["3b"](blocks["3a"](
          z, reference=r), reference=r)),
      ("pool3, 4a..4e + aux", lambda z, r=False: _stage4(model, z, r)),
      ("pool4, 5a, 5b, head", lambda z, r=False: model.classifier(
          model.global_pool(blocks["5b"](blocks["5a"](
              model.pool4(z), reference=r), reference=r)))),
  ]
  print("  forward by stage (map side, GFLOP/s achieved):")
  z = x
  for name, fn in stages:
    compiled = tf.function(fn)
    out = compiled(z)
    seconds = timed(lambda: tf.nest.flatten(compiled(z))[0].numpy(), reps)
    macs = flops.forward_macs(lambda y, f=fn: f(y, True),
                              tf.TensorSpec([1, *z.shape[1:]]))
    print(f"    {name:22s} in {z.shape[1]:3d}x{z.shape[2]:<3d} "
          f"{seconds * 1e3:7.1f} ms {2 * macs * BATCH / seconds / 1e9:6.0f}")
    z = out if not isinstance(out, tuple) else out[0]


def _stage4(model, z, reference=False):
  z = model.blocks["4a"](model.pool3(z), reference=reference)
  aux1 = model.aux1(z, training=False, reference=reference)
  for key in ("4b", "4c", "4d"):
    z = model.blocks[key](z, reference=reference)
  aux2 = model.aux2(z, training=False, reference=reference)
  return model.blocks["4e"](z, reference=reference), aux1, aux2


if __name__ == "__main__":
  main(int(sys.argv[1]) if len(sys.argv) > 1 else 28)
