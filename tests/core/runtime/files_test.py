"""The file layer behaves alike on local disk and on a file system that is
not POSIX (TF's in-memory `ram://`, which has no locks, no atomic folder
rename, appends to a file opened again, and lists by prefix)."""

import os
import tempfile

from absl.testing import parameterized
import tensorflow as tf

from core.runtime import files
from core.runtime.errors import InputError


class FilesTest(parameterized.TestCase):

  def root(self, kind: str) -> str:
    if kind == "local":
      return tempfile.mkdtemp()
    return f"ram://files-test-{os.getpid()}-{id(self)}-{self._testMethodName}"

  def write_tree(self, root: str) -> None:
    # `assets` and `assets.extra` share a prefix, as in a SavedModel.
    for name in ("assets/x", "assets.extra/metadata.json", "saved_model.pb",
                 "variables/variables.index"):
      files.makedirs(os.path.dirname(os.path.join(root, name)))
      files.write_atomic(os.path.join(root, name), name)

  def test_schemes(self):
    self.assertEqual(files.scheme("/a/b"), "")
    self.assertEqual(files.scheme("file:///a/b"), "file")
    self.assertEqual(files.scheme("gs://bucket/run"), "gs")
    self.assertEqual(files.scheme("RAM://x"), "ram")
    self.assertTrue(files.is_local("runs/lr[0.1]"))
    self.assertFalse(files.is_local("gs://b/r"))
    self.assertFalse(files.is_local("file:///a/b"))  # os calls cannot take it

  def test_a_file_url_is_refused_naming_its_plain_path(self):
    base = tempfile.mkdtemp()
    with self.assertRaisesRegex(
        InputError, f"^`model_dir` 'file://{base}/run': give the local path "
        f"itself \\('{base}/run'\\), without file://.$"):
      files.check_scheme(f"file://{base}/run", "model_dir")
    self.assertEqual(os.listdir(base), [])  # nothing was written

  def test_an_unknown_scheme_is_refused_naming_the_known_ones(self):
    files.check_scheme("gs://b/run", "model_dir")  # TF's own: accepted
    files.check_scheme("ram://b/run", "model_dir")
    with self.assertRaisesRegex(
        InputError, r"^`export_dir` 's3://b/x': TensorFlow has no file "
        r"system for s3:// here \(it knows gs://, ram:// and local paths\)"):
      files.check_scheme("s3://b/x", "export_dir")

  @parameterized.parameters("local", "ram")
  def test_write_atomic_replaces_the_whole_file(self, kind):
    path = os.path.join(self.root(kind), "manifest.json")
    files.makedirs(os.path.dirname(path))
    files.write_atomic(path, "a long first version")
    files.write_atomic(path, b"second")
    self.assertEqual(files.read_text(path), "second")
    self.assertEqual(files.listdir(os.path.dirname(path)), ["manifest.json"])

  @parameterized.parameters(0o022, 0o027, 0o002)
  def test_write_atomic_creates_files_as_open_does(self, umask):
    # A server or colleague running as another user reads what the run
    # writes (the manifest, an export's metadata.json), as with open().
    path = os.path.join(tempfile.mkdtemp(), "manifest.json")
    previous = os.umask(umask)
    try:
      files.write_atomic(path, "first")
      created = os.stat(path).st_mode & 0o777
      files.write_atomic(path, "second")
      replaced = os.stat(path).st_mode & 0o777
    finally:
      os.umask(previous)
    self.assertEqual((created, replaced), (0o666 & ~umask,) * 2)

  @parameterized.parameters("local", "ram")
  def test_listing_and_scanning_tell_folders_from_files(self, kind):
    root = self.root(kind)
    self.write_tree(root)
    self.assertEqual(files.listdir(os.path.join(root, "assets")), ["x"])
    self.assertEqual(files.scan(root), (
        ["assets", "assets.extra", "variables"], ["saved_model.pb"]))
    self.assertEqual(files.matching(root, lambda n: n.startswith("assets")),
                     [os.path.join(root, "assets"),
                      os.path.join(root, "assets.extra")])
    self.assertEqual(files.size(os.path.join(root, "saved_model.pb")), 14)

  @parameterized.parameters("local", "ram")
  def test_publish_moves_a_whole_folder_and_never_overwrites(self, kind):
    base = self.root(kind)
    tmp, final = os.path.join(base, ".tmp-4"), os.path.join(base, "4")
    self.write_tree(tmp)
    files.publish(tmp, final, commit_file="saved_model.pb")
    self.assertEqual(files.listdir(base), ["4"])
    self.assertEqual(files.read_text(os.path.join(
        final, "assets.extra", "metadata.json")), "assets.extra/metadata.json")
    self.write_tree(tmp)
    with self.assertRaises(FileExistsError):
      files.publish(tmp, final, commit_file="saved_model.pb")
    self.assertTrue(files.exists(os.path.join(tmp, "saved_model.pb")))

  def test_a_version_published_meanwhile_is_never_overwritten(self):
    base = tempfile.mkdtemp()
    tmp, final = os.path.join(base, ".tmp-4"), os.path.join(base, "4")
    self.write_tree(tmp)
    exists = files.exists
    # Another run publishes version 4 between the look and the rename.
    raced = lambda path: False if path == final else exists(path)
    self.write_tree(final)
    files.exists = raced
    try:
      with self.assertRaises(FileExistsError):
        files.publish(tmp, final, commit_file="saved_model.pb")
    finally:
      files.exists = exists
    self.assertTrue(files.exists(os.path.join(tmp, "saved_model.pb")))

  def test_on_object_storage_the_commit_file_is_copied_last(self):
    base = self.root("ram")
    tmp, final = os.path.join(base, ".tmp-4"), os.path.join(base, "4")
    self.write_tree(tmp)
    seen = []
    copy = files._copy  # pylint: disable=protected-access

    def watched(source, target):
      # A poller looking now: the commit file only once all else is there.
      seen.append((os.path.relpath(target, final), files.exists(
          os.path.join(final, "saved_model.pb"))))
      copy(source, target)

    files._copy = watched  # pylint: disable=protected-access
    try:
      files.publish(tmp, final, commit_file="saved_model.pb")
    finally:
      files._copy = copy  # pylint: disable=protected-access
    self.assertEqual(seen[-1], ("saved_model.pb", False))
    self.assertLen(seen, 4)
    self.assertFalse(any(committed for _, committed in seen))

  @parameterized.parameters("local", "ram")
  def test_rmtree_and_move(self, kind):
    base = self.root(kind)
    self.write_tree(os.path.join(base, "run"))
    files.move(os.path.join(base, "run"), os.path.join(base, "old", "run"))
    self.assertEqual(files.listdir(base), ["old"])
    self.assertEqual(files.scan(os.path.join(base, "old", "run"))[1],
                     ["saved_model.pb"])
    files.rmtree(os.path.join(base, "old"))
    self.assertEqual(files.listdir(base), [])
    files.rmtree(os.path.join(base, "absent"))  # nothing to do

  @parameterized.parameters("local", "ram")
  def test_failures_are_os_errors(self, kind):
    base = self.root(kind)
    files.makedirs(base)
    with self.assertRaises(FileNotFoundError):
      files.read_bytes(os.path.join(base, "absent"))
    with self.assertRaises(IsADirectoryError):
      files.open_read(base)
    files.write_atomic(os.path.join(base, "a"), "1")
    files.makedirs(os.path.join(base, "b"))
    with self.assertRaises(FileExistsError):
      files.move(os.path.join(base, "a"), os.path.join(base, "b"))

  def test_local_names_that_are_not_utf8_are_listed_and_read(self):
    base = tempfile.mkdtemp()
    with open(os.path.join(os.fsencode(base), b"caf\xe9.png"), "wb") as f:
      f.write(b"pixels")
    [name] = files.listdir(base)
    self.assertEqual(os.fsencode(name), b"caf\xe9.png")
    self.assertEqual(files.read_bytes(os.path.join(base, name)), b"pixels")
    self.assertTrue(files.isfile(os.path.join(base, name)))

  def test_a_reader_reads_seeks_and_sizes(self):
    path = os.path.join(self.root("ram"), "f")
    files.makedirs(os.path.dirname(path))
    files.write_atomic(path, b"0123456789")
    with files.open_read(path) as reader:
      self.assertEqual(reader.read(2), b"01")
      reader.seek(5)
      self.assertEqual((reader.read(), reader.size()), (b"56789", 10))

  def test_free_bytes_only_on_local_disk(self):
    self.assertGreater(files.free_bytes(tempfile.gettempdir()), 0)
    self.assertIsNone(files.free_bytes("ram://x"))


if __name__ == "__main__":
  tf.test.main()
