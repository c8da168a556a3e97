import base64
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from core.runtime import errors
from core.runtime import files
from core.data import images as images_lib
from core.data import preprocessing
from layers.googlenet import GoogLeNet
from tests import helpers
from train.artefacts import export
from train.artefacts import serving

NAMES = tuple(f"class {i}" for i in range(10))

LOADER = textwrap.dedent("""
    import sys

    class NoProject:
      \"\"\"A serving host without this project: its packages cannot be
      imported (the test venv has it installed, so block it explicitly).\"\"\"
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("train", "core", "layers", "tests"):
          raise ImportError(f"{name} is not available on a serving host")
        return None

    sys.meta_path.insert(0, NoProject())
    import numpy as np, tensorflow as tf
    try:
      import train
      sys.exit("project importable")
    except ImportError:
      pass
    signatures = tf.saved_model.load(sys.argv[1]).signatures
    images = np.load(sys.argv[2])
    out = signatures["serving_default"](images=tf.constant(images))
    encoded = tf.constant([tf.io.encode_png(i).numpy() for i in images])
    from_bytes = signatures["serving_bytes"](images=encoded)
    np.savez(sys.argv[3], bytes_logits=from_bytes["logits"].numpy(),
             **{k: v.numpy() for k, v in out.items()})
""")


def load_in_fresh_process(test, path, images):
  """Serves `images` from the export at `path` in a process that cannot
  import the project (LOADER); returns its outputs."""
  tmp = test.get_temp_dir()
  np.save(os.path.join(tmp, "in.npy"), images)
  out_file = os.path.join(tmp, "out.npz")
  script = os.path.join(tmp, "load.py")
  open(script, "w").write(LOADER)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  done = subprocess.run([sys.executable, "-I", script, path,
                         os.path.join(tmp, "in.npy"), out_file],
                        cwd=tmp, env=env, capture_output=True, text=True)
  test.assertEqual(done.returncode, 0, done.stderr[-2000:])
  return np.load(out_file, allow_pickle=True)


def rest_predict(signatures, body: str) -> dict:
  """TF Serving's REST predict (POST /v1/models/<name>:predict) on a loaded
  SavedModel's signatures, as TF Serving reads a body: the signature named
  by `signature_name` (default serving_default); `instances` (rows: for a
  one-input signature each row is the value) or `inputs` (columns, by input
  name); a {"b64": ...} object stands for the bytes it encodes. Returns the
  response: `predictions` (one object per row) or `outputs` (columns)."""
  request = json.loads(body)
  fn = signatures[request.get("signature_name", "serving_default")]
  specs = fn.structured_input_signature[1]

  def value(item):
    if isinstance(item, dict) and list(item) == ["b64"]:
      return base64.b64decode(item["b64"])
    return [value(i) for i in item] if isinstance(item, list) else item

  if "instances" in request:
    (name,) = specs  # the one-input form, as this model's signatures are
    columns = {name: value(request["instances"])}
  else:
    columns = {k: value(v) for k, v in request["inputs"].items()}
  out = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in columns.items()})
  out = {k: v.numpy().tolist() if v.dtype != tf.string else
         [s.decode() for s in v.numpy()] for k, v in out.items()}
  if "instances" not in request:
    return {"outputs": out}
  return {"predictions": [dict(zip(out, row)) for row in zip(*out.values())]}


def b64(data: bytes) -> dict:
  return {"b64": base64.b64encode(data).decode()}


def small_network(*args, **kwargs) -> GoogLeNet:
  return GoogLeNet(*args, blocks=helpers.SMALL_BLOCKS, **kwargs)


class ExportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # The small network (tests/helpers.py): the subject is the export's
    # machinery; the paper's whole network is exported and served against
    # torchvision's in tests/import_weights_test.py and by tests/e2e_test.py.
    with strategy.scope():  # exported from MirroredVariables, as in training
      cls.model = small_network(10, 1, 32)
    cls.base = os.path.join(tf.compat.v1.test.get_temp_dir(), "export")
    cls.path = export.export(cls.model, cls.base, 7, image_shape=(28, 28, 1),
                             class_names=NAMES, metadata={"dataset": "synthetic"})
    cls.images = np.random.RandomState(0).randint(
        0, 256, [5, 28, 28, 1]).astype(np.uint8)

  def expected_logits(self):
    x = preprocessing.preprocess(tf.constant(self.images), image_size=32,
                                 channels=1)
    return self.model(x, training=False).logits.numpy()

  def test_tf_serving_layout(self):
    self.assertEqual(self.path, os.path.join(self.base, "7"))
    self.assertTrue(os.path.isfile(os.path.join(self.path, "saved_model.pb")))
    self.assertTrue(os.path.isfile(os.path.join(
        self.path, "variables", "variables.index")))
    self.assertEqual(os.listdir(self.base), ["7"])

  def test_signatures(self):
    signatures = tf.saved_model.load(self.path).signatures
    fn = signatures["serving_default"]
    spec = fn.structured_input_signature[1]["images"]
    self.assertEqual((spec.dtype, spec.shape.as_list()),
                     (tf.uint8, [None, None, None, 1]))
    for name, key in (("serving_bytes", "images"),
                      ("serving_tf_example", "inputs")):
      self.assertEqual(list(signatures[name].structured_input_signature[1]),
                       [key])
      spec = signatures[name].structured_input_signature[1][key]
      self.assertEqual((spec.dtype, spec.shape.as_list()),
                       (tf.string, [None]))
    for name in ("serving_default", "serving_bytes", "serving_tf_example"):
      outputs = signatures[name].structured_outputs
      self.assertEqual(sorted(outputs), ["class_names", "classes", "logits",
                                         "probabilities"])
      self.assertEqual(outputs["classes"].dtype, tf.int64)
      self.assertEqual(outputs["class_names"].dtype, tf.string)
      self.assertEqual(outputs["probabilities"].shape.as_list(), [None, 10])
    self.assertLen(signatures, 4)

  def test_the_conversion_signature_is_fixed_size_pixels_to_numbers(self):
    fn = tf.saved_model.load(self.path).signatures[serving.CONVERSION]
    spec = fn.structured_input_signature[1]["images"]
    self.assertEqual((spec.dtype, spec.shape.as_list()),
                     (tf.uint8, [None, 28, 28, 1]))
    self.assertEqual(sorted(fn.structured_outputs),
                     ["logits", "probabilities"])
    out = fn(images=tf.constant(self.images))
    self.assertAllClose(out["logits"], self.expected_logits(), atol=1e-4,
                        rtol=1e-4)
    with self.assertRaises(tf.errors.InvalidArgumentError):
      fn(images=tf.zeros([1, 32, 32, 1], tf.uint8))

  def test_tf_examples_in_tf_servings_rest_format(self):
    # Model Garden's tf_example input: each serialized Example holds the
    # encoded image (and here a label, which serving ignores), sent as TF
    # Serving's REST body carries bytes, {"b64": ...}.
    signatures = tf.saved_model.load(self.path).signatures
    examples = []
    for label, image in enumerate(self.images):
      example = tf.train.Example.FromString(export.example_of(
          tf.io.encode_png(image).numpy()))
      example.features.feature["image/class/label"].int64_list.value.append(
          label)
      examples.append(b64(example.SerializeToString()))
    want = signatures["serving_default"](images=tf.constant(self.images))
    rows = rest_predict(signatures, json.dumps(
        {"signature_name": "serving_tf_example", "instances": examples}))
    self.assertLen(rows["predictions"], len(self.images))
    self.assertAllEqual([r["logits"] for r in rows["predictions"]],
                        want["logits"])
    self.assertEqual([r["class_names"] for r in rows["predictions"]],
                     [n.decode() for n in want["class_names"].numpy()])
    columns = rest_predict(signatures, json.dumps(
        {"signature_name": "serving_tf_example",
         "inputs": {"inputs": examples[:2]}}))
    self.assertAllEqual(columns["outputs"]["classes"], want["classes"][:2])
    self.assertAllClose(columns["outputs"]["logits"], self.expected_logits()[
        :2], atol=1e-4, rtol=1e-4)

  def test_an_example_without_an_encoded_image_is_refused(self):
    fn = tf.saved_model.load(self.path).signatures["serving_tf_example"]
    example = tf.train.Example()
    example.features.feature["image/class/label"].int64_list.value.append(1)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "image/encoded"):
      fn(inputs=tf.constant([example.SerializeToString()]))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "header cannot be sized"):
      fn(inputs=tf.constant([export.example_of(b"not an image")]))

  def test_native_size_gives_the_training_numbers_other_sizes_are_resized(
      self):
    fn = tf.saved_model.load(self.path).signatures["serving_default"]
    out = fn(images=tf.constant(self.images))
    self.assertAllClose(out["logits"], self.expected_logits(), atol=1e-4,
                        rtol=1e-4)
    self.assertAllEqual(out["class_names"],
                        [NAMES[c].encode() for c in out["classes"].numpy()])
    big = tf.cast(tf.image.resize(tf.constant(self.images), [56, 61],
                                  method="nearest"), tf.uint8)
    # Another size is first brought to the training size, as the input
    # pipeline brings files (antialiased bilinear, rounded to uint8).
    small = images_lib.resize(big[0], 28, 28)
    self.assertAllClose(fn(images=big)["logits"][:1],
                        fn(images=small[None])["logits"], atol=1e-5)

  def test_encoded_images_match_pixels(self):
    signatures = tf.saved_model.load(self.path).signatures
    encoded = tf.constant([tf.io.encode_png(i).numpy() for i in self.images])
    from_bytes = signatures["serving_bytes"](images=encoded)
    from_pixels = signatures["serving_default"](
        images=tf.constant(self.images))
    for key in ("logits", "classes", "class_names"):
      self.assertAllEqual(from_bytes[key], from_pixels[key])

  def test_loads_in_a_fresh_process_without_the_project(self):
    out = load_in_fresh_process(self, self.path, self.images)
    expected = self.expected_logits()
    self.assertAllClose(out["logits"], expected, atol=1e-4, rtol=1e-4)
    self.assertAllClose(out["probabilities"].sum(-1), np.ones(5), atol=1e-5)
    self.assertAllEqual(out["classes"], expected.argmax(-1))
    self.assertAllEqual(out["bytes_logits"], out["logits"])
    self.assertEqual(out["class_names"][0], NAMES[out["classes"][0]].encode())

  def test_saved_model_cli_lists_the_signature(self):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
      self.skipTest("saved_model_cli is not installed next to python")
    done = subprocess.run([cli, "show", "--dir", self.path, "--all"],
                          capture_output=True, text=True)
    self.assertIn("signature_def['serving_default']", done.stdout)
    self.assertIn("signature_def['serving_bytes']", done.stdout)
    self.assertIn("dtype: DT_UINT8", done.stdout)
    self.assertIn("shape: (-1, -1, -1, 1)", done.stdout)
    for name in ("logits", "probabilities", "classes"):
      self.assertIn(f"outputs['{name}']", done.stdout)

  def test_only_the_trunk_is_exported(self):
    loaded = tf.saved_model.load(self.path)
    names = {v.name for v in loaded.weights}
    self.assertLen(names, len(self.model.trunk_variables))
    self.assertFalse(any("aux" in n for n in names))

  def test_the_network_is_saved_once_for_both_signatures(self):
    # serving_bytes decodes, then calls serving_default's function: the
    # file holds as many convolutions as one traced forward pass has.
    def convolutions(graph_def):
      nodes = list(graph_def.node) + [n for f in graph_def.library.function
                                      for n in f.node_def]
      return sum(n.op == "Conv2D" for n in nodes)

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(self.path, "saved_model.pb"), "rb") as f:
      saved.ParseFromString(f.read())
    forward = tf.function(lambda x: self.model(x, training=False).logits)
    once = convolutions(forward.get_concrete_function(
        tf.TensorSpec([None, 32, 32, 1])).graph.as_graph_def())
    self.assertGreater(once, 0)
    self.assertEqual(convolutions(saved.meta_graphs[0].graph_def), once)

  def test_rejects_wrong_dtype_and_shape(self):
    fn = tf.saved_model.load(self.path).signatures["serving_default"]
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "expected to be a uint8 tensor"):
      fn(images=tf.zeros([1, 28, 28, 1], tf.float32))
    for shape in ([28, 28, 1], [2, 28, 28, 3]):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "Shape of tensor .* is not compatible"):
        fn(images=tf.zeros(shape, tf.uint8))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "header cannot be sized"):
      tf.saved_model.load(self.path).signatures["serving_bytes"](
          images=tf.constant([b"not an image"]))

  def test_an_oversized_upload_is_refused_before_decoding(self):
    png = bytearray(tf.io.encode_png(self.images[0]).numpy())
    png[16:24] = (10_000).to_bytes(4, "big") * 2  # IHDR: 10,000 x 10,000
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "more than the 50000000 this model accepts"):
      tf.saved_model.load(self.path).signatures["serving_bytes"](
          images=tf.constant([bytes(png)]))

  def test_existing_version_with_these_weights_is_not_exported_again(self):
    lines = []
    self.assertIsNone(export.export(self.model, self.base, 7,
                                    image_shape=(28, 28, 1),
                                    class_names=NAMES, report=lines.append))
    self.assertEqual(lines, [])  # the same command again: nothing to say

  def test_existing_version_with_other_weights_is_kept_next_one_published(
      self):
    base = os.path.join(self.get_temp_dir(), "taken")
    first = export.export(self.model, base, 7, image_shape=(28, 28, 1),
                          class_names=NAMES)
    before = open(os.path.join(first, "saved_model.pb"), "rb").read()
    other = small_network(10, 1, 32)  # a retrain: other weights, same step
    other.inference_variables[0].assign_add(
        tf.ones_like(other.inference_variables[0]))
    lines = []
    path = export.export(other, base, 7, image_shape=(28, 28, 1),
                         class_names=NAMES, report=lines.append)
    self.assertEqual(path, os.path.join(base, "8"))
    self.assertEqual(lines, [f"version 7 in {base} exists with other "
                             "weights; published these as version 8 "
                             "instead"])
    self.assertEqual(open(os.path.join(first, "saved_model.pb"), "rb").read(),
                     before)
    meta = [json.load(open(os.path.join(base, v, "assets.extra",
                                        "metadata.json")))
            for v in ("7", "8")]
    self.assertNotEqual(meta[0]["weights_sha256"], meta[1]["weights_sha256"])
    # The retrain's weights again at step 7: version 8 has them already.
    lines.clear()
    self.assertIsNone(export.export(other, base, 7, image_shape=(28, 28, 1),
                                    class_names=NAMES, report=lines.append))
    self.assertEqual(lines, [f"version 8 in {base} already holds these "
                             "weights; nothing new to export"])

  def test_signature_takes_the_data_sets_channels_any_size(self):
    model = small_network(5, 3, 32)
    path = export.export(model, os.path.join(self.get_temp_dir(), "rgb"), 1,
                         image_shape=(None, None, 3), class_names="abcde")
    fn = tf.saved_model.load(path).signatures["serving_default"]
    spec = fn.structured_input_signature[1]["images"]
    self.assertEqual(spec.shape.as_list(), [None, None, None, 3])
    for side in (32, 40, 300):
      self.assertEqual(fn(images=tf.zeros([2, side, side, 3], tf.uint8))[
          "probabilities"].shape, [2, 5])

  def test_warmup_requests_parse_as_tf_serving_reads_them_and_replay(self):
    """In a process without the project, with TF Serving's own protos."""
    try:
      import tensorflow_serving.apis  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      self.skipTest("tensorflow-serving-api is not installed (make test "
                    "installs it)")
    tmp = self.get_temp_dir()
    script = os.path.join(tmp, "warmup.py")
    open(script, "w").write(LOADER.split("signatures =")[0] + textwrap.dedent(
        """
        from tensorflow_serving.apis import prediction_log_pb2
        path = sys.argv[1]
        signatures = tf.saved_model.load(path).signatures
        warmup = path + "/assets.extra/tf_serving_warmup_requests"
        replayed = []
        for record in tf.data.TFRecordDataset(warmup):
          log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
          request = log.predict_log.request
          inputs = {k: tf.constant(tf.make_ndarray(v))
                    for k, v in request.inputs.items()}
          out = signatures[request.model_spec.signature_name](**inputs)
          replayed.append((request.model_spec.signature_name,
                           out["logits"].numpy().argmax(-1).tolist()))
        print(replayed)
        """))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run([sys.executable, "-I", script, self.path],
                          cwd=tmp, env=env, capture_output=True, text=True)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    replayed = eval(done.stdout.strip().splitlines()[-1])  # pylint: disable=eval-used
    self.assertEqual([name for name, _ in replayed],
                     ["serving_default", "serving_bytes", "serving_tf_example",
                      serving.CONVERSION])
    for _, classes in replayed[1:]:  # the same pixels, as PNG or not
      self.assertEqual(classes, replayed[0][1])
    self.assertEqual(len(replayed[0][1]), 2)

  def test_saved_model_cli_runs_it(self):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
      self.skipTest("saved_model_cli is not installed next to python")
    tmp = self.get_temp_dir()
    np.save(os.path.join(tmp, "cli_in.npy"), self.images)
    done = subprocess.run(
        [cli, "run", "--dir", self.path, "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs",
         f"images={os.path.join(tmp, 'cli_in.npy')}", "--outdir", tmp,
         "--overwrite"], capture_output=True, text=True)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    classes = np.load(os.path.join(tmp, "classes.npy"))
    self.assertAllEqual(classes, self.expected_logits().argmax(-1))

  def test_keras_3_tfsmlayer_loads_it(self):
    keras = __import__("keras")
    if not keras.__version__.startswith("3"):
      self.skipTest(f"Keras {keras.__version__} has no TFSMLayer")
    layer = keras.layers.TFSMLayer(self.path,
                                   call_endpoint="serving_default")
    out = layer(tf.constant(self.images))
    self.assertAllClose(out["logits"], self.expected_logits(), atol=1e-4,
                        rtol=1e-4)

  def test_an_export_that_does_not_reproduce_the_model_is_not_published(
      self):
    base = os.path.join(self.get_temp_dir(), "mismatch")
    other = small_network(10, 1, 32)
    for v in other.trainable_variables:  # other weights, whatever the seed
      v.assign(v + 0.5)
    real = export._write  # pylint: disable=protected-access

    def write_other(module, path, metadata):
      real(serving.ServingModule(other, (28, 28, 1), NAMES), path, metadata)

    export._write = write_other  # pylint: disable=protected-access
    try:
      with self.assertRaisesRegex(
          errors.ExportError, r"does not reproduce the trained model "
          r"\(serving_default: logits differ by .*\); nothing was "
          "published"):
        export.export(self.model, base, 5, image_shape=(28, 28, 1),
                      class_names=NAMES)
    finally:
      export._write = real  # pylint: disable=protected-access
    self.assertEqual(os.listdir(base), [])

  def test_full_disk_publishes_nothing(self):
    base = os.path.join(self.get_temp_dir(), "full")

    def no_space(*args, **kwargs):
      os.makedirs(args[1], exist_ok=True)
      raise OSError(28, "No space left on device")

    real = tf.saved_model.save
    tf.saved_model.save = no_space
    try:
      with self.assertRaisesRegex(errors.NoSpaceError,
                                  f"no space left in {base} to export "
                                  "version 4"):
        export.export(self.model, base, 4, image_shape=(28, 28, 1),
                      class_names=NAMES)
    finally:
      tf.saved_model.save = real
    self.assertEqual(os.listdir(base), [])

  def test_only_this_hosts_dead_temporaries_are_removed(self):
    base = os.path.join(self.get_temp_dir(), "ex2")
    dead = subprocess.Popen(["true"])
    dead.wait()
    ours_dead = f".tmp-9-{export._HOST}-{dead.pid}"
    ours_live = f".tmp-9-{export._HOST}-{os.getpid()}"
    other_host = f".tmp-9-elsewhere-{dead.pid}"
    for name in (ours_dead, ours_live, other_host, "3"):
      os.makedirs(os.path.join(base, name, "variables"))
    export.remove_stale_temporaries(base)
    self.assertEqual(sorted(os.listdir(base)),
                     sorted([ours_live, other_host, "3"]))

  def test_a_publish_cut_short_on_object_storage_is_completed(self):
    # A SIGKILL between the first and the last object of the copy: the
    # version holds everything but saved_model.pb (copied last), which the
    # resumed run's identical weights must not take for "exported".
    base = f"ram://cut-{os.getpid()}/export"
    copy, copies = files._copy, []  # pylint: disable=protected-access

    def killed(source, target):
      if copies:
        raise KeyboardInterrupt("killed")  # not an OSError: nothing tidies
      copies.append(target)
      copy(source, target)

    files._copy = killed  # pylint: disable=protected-access
    try:
      with self.assertRaises(KeyboardInterrupt):
        export.export(self.model, base, 7, image_shape=(28, 28, 1),
                      class_names=NAMES)
    finally:
      files._copy = copy  # pylint: disable=protected-access
    half = os.path.join(base, "7")
    self.assertTrue(files.exists(os.path.join(half, "assets.extra",
                                              "metadata.json")))
    self.assertFalse(files.exists(os.path.join(half, "saved_model.pb")))
    self.assertEqual(export.export(self.model, base, 7,
                                   image_shape=(28, 28, 1),
                                   class_names=NAMES), half)
    self.assertTrue(files.exists(os.path.join(half, "saved_model.pb")))
    served = tf.saved_model.load(half).signatures["serving_default"]
    self.assertAllClose(served(images=tf.constant(self.images))["logits"],
                        self.expected_logits(), atol=1e-5)

  def test_a_concurrent_publish_of_the_same_version_keeps_them_apart(self):
    # Another run's first object lands in version 7 between this run's
    # look and its copies: this run takes back what it copied and
    # publishes version 8; version 7 holds only the other run's object.
    base = f"ram://race-{os.getpid()}/export"
    copy = files._copy  # pylint: disable=protected-access
    theirs = os.path.join(base, "7", "saved_model.pb")

    def raced(source, target):
      if target.startswith(os.path.join(base, "7", "")) and not files.exists(
          theirs):
        files.write_atomic(theirs, b"the other run's")
      copy(source, target)

    files._copy = raced  # pylint: disable=protected-access
    try:
      path = export.export(self.model, base, 7, image_shape=(28, 28, 1),
                           class_names=NAMES)
    finally:
      files._copy = copy  # pylint: disable=protected-access
    self.assertEqual(path, os.path.join(base, "8"))
    left = [os.path.join(folder, name) for folder, _, names in
            tf.io.gfile.walk(os.path.join(base, "7")) for name in names]
    self.assertEqual(left, [theirs])  # empty folder markers aside
    self.assertTrue(files.exists(os.path.join(path, "saved_model.pb")))

  def test_a_folder_named_with_a_unicode_digit_is_not_a_version(self):
    base = os.path.join(self.get_temp_dir(), "sup")
    os.makedirs(os.path.join(base, "\u00b2"))
    self.assertEqual(export.export(self.model, base, 3,
                                   image_shape=(28, 28, 1),
                                   class_names=NAMES),
                     os.path.join(base, "3"))


class BatchNormExportTest(tf.test.TestCase):

  def test_serves_with_the_moving_statistics_and_mirroring(self):
    # One export for both options: batch normalisation's statistics (no
    # aux ones) and test-time mirroring, each must reach the SavedModel.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      model = small_network(10, 1, 28, stem="medium", norm="batch")
    rng = np.random.RandomState(1)
    for layer in model.norm_layers:  # statistics far from their start
      layer.moving_mean.assign(rng.normal(size=layer.channels) * 0.1)
      layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.channels))
    path = export.export(model, os.path.join(self.get_temp_dir(), "bn"), 1,
                         image_shape=(28, 28, 1), class_names=NAMES,
                         mirror=True)
    images = rng.randint(0, 256, [4, 28, 28, 1]).astype(np.uint8)
    out = load_in_fresh_process(self, path, images)
    x = preprocessing.preprocess(tf.constant(images), image_size=28,
                                 channels=1)
    want = model.classify(x, mirror=True).numpy()
    self.assertAllClose(out["logits"], want, atol=1e-4, rtol=1e-4)
    self.assertNotAllClose(out["logits"], model.classify(x), atol=1e-3)
    names = {v.name for v in tf.saved_model.load(path).weights}
    self.assertLen(names, len(model.inference_variables))
    self.assertTrue(any("moving_variance" in n for n in names))
    self.assertFalse(any("aux" in n for n in names))
