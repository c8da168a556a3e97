"""`python -m bench.op_profile [IMAGE_SIZE [REPLICAS [PRECISION]]]`: kernel
time per op type in the engine's training step, from a TensorFlow profiler
trace (PRECISION: float32 by default, or mixed_bfloat16 ...).

Runs the real compiled loop (28x28 by default, global batch 64), traces 10
steps with `tf.profiler`, and sums each kernel's duration by op type (per
step). Kernels run concurrently on the inter-op threads, so the sum exceeds
the step's wall time; the ranking is what it is for.
"""

import collections
import glob
import os
import sys
import tempfile
import time

BATCH = 64
STEPS = 10


def main(image_size: int, replicas: int, precision: str) -> None:
  from bench.engines import engine_on
  from core.data import datasets
  engine, iterator, _ = engine_on(datasets.synthetic(1024),
                                  image_size=image_size, replicas=replicas,
                                  batch=BATCH, mixed_precision=precision)
  import tensorflow as tf
  from tensorflow.tsl.profiler.protobuf import xplane_pb2
  engine.loop.run(iterator, 3)
  with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    engine.loop.run(iterator, STEPS)
    wall = (time.perf_counter() - start) / STEPS
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                        recursive=True)[0], "rb") as f:
      space.ParseFromString(f.read())
  per_type, count = collections.Counter(), collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if ":" in name and "/" in name:  # "scope/op_name:OpType" = a kernel
          op_type = name.rsplit(":", 1)[1]
          per_type[op_type] += event.duration_ps / 1e9 / STEPS
          count[op_type] += 1 / STEPS
  print(f"image {image_size}, batch {BATCH}, {replicas} replica(s), "
        f"{precision}: "
        f"{wall * 1e3:.1f} ms per step under the profiler")
  print(f"  {'op type':40s} {'ms/step':>8s} {'calls':>6s}")
  for op_type, ms in per_type.most_common(20):
    print(f"  {op_type:40s} {ms:8.2f} {count[op_type]:6.0f}")


if __name__ == "__main__":
  main(int(sys.argv[1]) if len(sys.argv) > 1 else 28,
       int(sys.argv[2]) if len(sys.argv) > 2 else 1,
       sys.argv[3] if len(sys.argv) > 3 else "float32")
