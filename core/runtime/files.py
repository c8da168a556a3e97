"""Files on any file system TensorFlow knows: the one place the engine
touches them.

Every file the engine reads, writes, lists, renames or removes goes through
this module, which goes through `tf.io.gfile`, so a local path, an NFS
mount, `gs://bucket/run` and any scheme a TensorFlow plugin registers behave
alike (`tests/house_test.py` refuses `os`, `open`, `glob`, `shutil` and
`fcntl` file calls anywhere else in `core/` and `train/`). Local paths take
the operating system's calls in three places, each for a reason measured on
TF 2.21:
- listing: `tf.io.gfile.listdir` raises UnicodeDecodeError on a file name
  that is not UTF-8; `os.listdir` returns it (surrogate-escaped), and reads
  hand TF such a path as bytes, which it opens;
- durability: gfile's close does not fsync, so a local rename that
  publishes a file or folder first flushes it (`fsync_tree`);
- `literal`: a symbolic link for folders whose names are glob patterns.

Object storage (any scheme but the local one) has no atomic rename of a
folder (`rename` copies and deletes object by object) and no locks. A
single object appears whole, so `write_atomic` renames one temporary object
over the target, and `publish` copies a folder with its commit file (a
SavedModel's `saved_model.pb`) last: a reader that needs the commit file
never sees half a folder. Locks: train/assembly/run_lock.py's lease.

Failures surface as OSError (FileNotFoundError, FileExistsError,
PermissionError, or OSError with TF's message), as for local calls.
"""

import contextlib
import errno
import fcntl
import functools
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.parse
import uuid
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar

from core.runtime.errors import InputError


class _TensorFlow:
  """TensorFlow, imported at the first file call that needs it: the
  commands read a run's manifest before TensorFlow loads, to choose the
  kernels it reads once, at import (train/startup/kernels.py)."""

  def __getattr__(self, name: str):
    import tensorflow  # pylint: disable=g-import-not-at-top
    return getattr(tensorflow, name)


tf = _TensorFlow()

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_F = TypeVar("_F", bound=Callable)


def scheme(path: str) -> str:
  """The file system scheme of `path`: "" for a local path, else the part
  before `://` ("gs", "ram", "s3", "file")."""
  match = _SCHEME.match(path)
  return match.group(1).lower() if match else ""


def is_local(path: str) -> bool:
  """Whether `path` is a plain path (local disk, or mounted: NFS). A
  `file://` URL is not: the `os` calls here would take it for a relative
  path, so it goes through TF, and `check_scheme` refuses it as a flag."""
  return not scheme(path)


def check_scheme(path: str, flag: str) -> None:
  """Refuses a path whose scheme no registered file system serves, before
  anything touches it (`os.makedirs("s3://b")` would make a local `s3:`),
  and a `file://` URL, whose plain path gets the local guarantees (the
  lock, flushed renames) that TF's file layer does not give.

  Raises:
    InputError: Naming `flag`, the scheme and the schemes TF knows here.
  """
  name = scheme(path)
  if not name:
    return
  if name == "file":
    raise InputError(
        f"`{flag}` {path!r}: give the local path itself "
        f"({urllib.parse.urlparse(path).path!r}), without file://.")
  known = sorted(s for s in tf.io.gfile.get_registered_schemes()
                 if s not in ("", "file"))
  if name not in known:
    raise InputError(
        f"`{flag}` {path!r}: TensorFlow has no file system for {name}:// "
        f"here (it knows {', '.join(s + '://' for s in known)} and local "
        "paths); import the TensorFlow plugin that registers it, or use a "
        "path it knows.")


def _os_error(error) -> OSError:
  """TF's error as the OSError a local call would raise."""
  lines = (error.message or str(error)).strip().splitlines()
  message = lines[0] if lines else type(error).__name__
  kinds = {tf.errors.NotFoundError: (FileNotFoundError, errno.ENOENT),
           tf.errors.AlreadyExistsError: (FileExistsError, errno.EEXIST),
           tf.errors.PermissionDeniedError: (PermissionError, errno.EACCES)}
  for tf_kind, (kind, code) in kinds.items():
    if isinstance(error, tf_kind):
      return kind(code, message)
  if "No space left on device" in message:
    return OSError(errno.ENOSPC, message)
  return OSError(message)


def _as_os_errors(function: _F) -> _F:
  @functools.wraps(function)
  def wrapped(*args, **kwargs):
    try:
      return function(*args, **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      if "tensorflow" in sys.modules and isinstance(e, tf.errors.OpError):
        raise _os_error(e) from None
      raise
  return wrapped  # type: ignore


def _tf_path(path: str):
  """What TF's file calls take: a local path that is not UTF-8 (a
  surrogate-escaped name from os.listdir) as bytes."""
  if is_local(path):
    try:
      path.encode("utf-8")
    except UnicodeEncodeError:
      return os.fsencode(path)
  return path


@_as_os_errors
def exists(path: str) -> bool:
  return tf.io.gfile.exists(_tf_path(path))


@_as_os_errors
def isdir(path: str) -> bool:
  return tf.io.gfile.isdir(_tf_path(path))


def isfile(path: str) -> bool:
  return exists(path) and not isdir(path)


def shown(path: str) -> str:
  """`path` for a message or a table: the bytes of a local name that is not
  UTF-8 (read with Python's surrogate escapes) as \\xNN escapes, which a
  strict UTF-8 stream and JSON take."""
  return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_special(path: str) -> bool:
  """Whether `path`, once links are followed, is a local named pipe,
  device or socket: a read of it would block for ever, or never end. False
  on object storage, for a broken link and for what cannot be looked at."""
  if not is_local(path):
    return False
  try:
    mode = os.stat(path).st_mode
  except OSError:
    return False
  return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@_as_os_errors
def listdir(path: str) -> List[str]:
  """The sorted names in folder `path` (without a trailing slash)."""
  if is_local(path):
    return sorted(os.listdir(path))
  return sorted(name.rstrip("/") for name in _children(path))


def _children(path: str) -> List[str]:
  """TF's listing of a folder not on local disk. TF 2.21's `ram://` matches
  names by prefix without the slash (listing `x/assets` yields `.extra`,
  from `x/assets.extra`): there each name is checked to exist."""
  names = tf.io.gfile.listdir(path)
  if scheme(path) == "ram":
    names = [n for n in names if tf.io.gfile.exists(os.path.join(path, n))]
  return names


@_as_os_errors
def scan(path: str) -> Tuple[List[str], List[str]]:
  """(folders, files): the sorted names in folder `path`, told apart in
  one listing where the file system allows (a local `scandir`; GCS marks
  folders with a trailing slash), else one look per entry."""
  if is_local(path):
    with os.scandir(path) as entries:
      items = [(e.name, e.is_dir()) for e in entries]
  else:
    items = [(name.rstrip("/"), name.endswith("/") or (
        scheme(path) != "gs" and tf.io.gfile.isdir(os.path.join(path, name))))
             for name in _children(path)]
  return (sorted(n for n, folder in items if folder),
          sorted(n for n, folder in items if not folder))


@_as_os_errors
def makedirs(path: str) -> None:
  tf.io.gfile.makedirs(path)


@_as_os_errors
def size(path: str) -> int:
  """The size in bytes of the file at `path`."""
  return tf.io.gfile.stat(_tf_path(path)).length


@_as_os_errors
def read_bytes(path: str) -> bytes:
  if is_local(path) and "tensorflow" not in sys.modules:
    with open(path, "rb") as f:  # before TF loads (see _TensorFlow)
      return f.read()
  with tf.io.gfile.GFile(_tf_path(path), "rb") as f:
    return f.read()


def read_system_text(path: str) -> str:
  """A local pseudo-file of the kernel (/proc/cpuinfo) as text: read by the
  OS, since such files report size 0 and TensorFlow's reader then returns
  nothing."""
  with open(path, "rb") as f:
    return f.read().decode("utf-8", "replace")


class Reader:
  """A file opened for reading: `read`, `seek`, `tell`, `size`, failures
  as OSError. From `open_read`."""

  def __init__(self, path: str):
    if isdir(path):
      raise IsADirectoryError(errno.EISDIR, f"{path} is a directory")
    self._file = tf.io.gfile.GFile(_tf_path(path), "rb")
    self.size()  # a missing or unreadable file fails here, not later

  @_as_os_errors
  def read(self, n: int = -1) -> bytes:
    return self._file.read(n)

  @_as_os_errors
  def seek(self, offset: int, whence: int = 0) -> int:
    return self._file.seek(offset, whence)

  @_as_os_errors
  def tell(self) -> int:
    return self._file.tell()

  @_as_os_errors
  def size(self) -> int:
    return self._file.size()

  def close(self) -> None:
    self._file.close()

  def __enter__(self) -> "Reader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


@_as_os_errors
def open_read(path: str) -> Reader:
  """The file at `path`, open for reading (OSError if it cannot be)."""
  return Reader(path)


def read_text(path: str) -> str:
  """The file at `path` as UTF-8 text (UnicodeDecodeError if it is not)."""
  return read_bytes(path).decode("utf-8")


@_as_os_errors
def write_atomic(path: str, data, *, durable: bool = True) -> None:
  """Writes `data` (bytes or str) so that readers see the old file or the
  new one, never half of it: a (locally, flushed) temporary renamed over
  `path`; on object storage the rename replaces the object whole."""
  payload = data.encode("utf-8") if isinstance(data, str) else data
  if not is_local(path):
    # Not straight into `path`: TF's in-memory file system appends to an
    # existing file. A rename onto an object replaces it whole (GCS: a
    # server-side copy, then the temporary's removal).
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(tmp, "wb") as f:
      f.write(payload)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return
  # Created as open() creates a file (0o666 less the umask), not mkstemp's
  # private 0600: TF Serving or a colleague running as another user reads
  # the manifest and an export's metadata.json.
  tmp = os.path.join(os.path.dirname(path),
                     f".{os.path.basename(path)}.{uuid.uuid4().hex}")
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(payload)
      if durable:
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@_as_os_errors
def remove(path: str) -> None:
  tf.io.gfile.remove(_tf_path(path))


def rmtree(path: str) -> None:
  """Removes the folder `path` and all it holds; nothing if it is absent.
  Object storage: every object under it, one by one (TF's own recursive
  delete leaves in-memory file systems' files in place)."""
  if not exists(path):
    return
  if is_local(path):
    shutil.rmtree(path, ignore_errors=True)
    return
  for name in _files_under(path):
    remove(name)
  with contextlib.suppress(OSError):  # folder markers, where there are any
    _remove_folders(path)


@_as_os_errors
def _remove_folders(path: str) -> None:
  """Removes the empty folders `path` and below, deepest first. TF 2.21's
  `ram://` removes a folder only as a file (its recursive delete matches
  `x/assets.extra` when asked for `x/assets`)."""
  for name in scan(path)[0]:
    if tf.io.gfile.exists(os.path.join(path, name)):
      _remove_folders(os.path.join(path, name))
  try:
    tf.io.gfile.remove(path)
  except tf.errors.OpError:  # a folder marker (GCS: `x/`), or none
    with contextlib.suppress(tf.errors.OpError):
      tf.io.gfile.rmtree(path)


@_as_os_errors
def _files_under(path: str) -> List[str]:
  """Every file below the folder `path`, sorted."""
  found = []
  folders, names = scan(path)
  for name in names:
    found.append(os.path.join(path, name))
  for name in folders:
    found += _files_under(os.path.join(path, name))
  return sorted(found)


def move(source: str, target: str) -> None:
  """Moves a file or folder. Locally one rename; on object storage a copy
  of each object, then the source's removal."""
  if is_local(source) and is_local(target):
    if os.path.exists(target):
      raise FileExistsError(errno.EEXIST, f"{target} exists")
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    os.replace(source, target)
    return
  if not isdir(source):
    _copy(source, target)
    remove(source)
    return
  for name in _files_under(source):
    _copy(name, os.path.join(target, os.path.relpath(name, source)))
  rmtree(source)


@_as_os_errors
def _copy(source: str, target: str) -> None:
  tf.io.gfile.makedirs(os.path.dirname(target))
  tf.io.gfile.copy(source, target, overwrite=False)


def publish(folder: str, target: str, *, commit_file: str) -> None:
  """Makes the complete folder `folder` appear as `target`, which a reader
  may be polling for.

  Locally (and on NFS) one rename of the flushed folder: a reader sees all
  of it or nothing. On object storage every other file is copied first and
  `commit_file` (a relative path) last, then `folder` is removed: a reader
  that waits for `commit_file`, as TF Serving and `tf.saved_model.load` do
  for `saved_model.pb`, never reads half a folder.

  Raises:
    FileExistsError: `target` exists; nothing was changed.
  """
  if exists(target):
    raise FileExistsError(errno.EEXIST, f"{target} exists")
  if is_local(folder) and is_local(target):
    fsync_tree(folder)
    try:
      os.rename(folder, target)
    except OSError as e:
      # A version another run published meanwhile: rename(2) refuses a
      # folder that is not empty. Said as the check above says it.
      if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
        raise FileExistsError(errno.EEXIST, f"{target} exists") from None
      raise
    return
  files = [os.path.relpath(name, folder) for name in _files_under(folder)]
  last = [name for name in files if name == commit_file]
  copied = []
  try:
    for name in [name for name in files if name != commit_file] + last:
      _copy(os.path.join(folder, name), os.path.join(target, name))
      copied.append(os.path.join(target, name))
  except FileExistsError:
    # Another run publishes `target` at the same moment (the look above
    # and the copies are not one step on object storage): take back what
    # this one copied, so no version mixes two runs' files.
    for name in copied:
      remove(name)
    raise
  rmtree(folder)


def fsync_tree(root: str) -> None:
  """Flushes every local file under `root` to disk, so a rename publishes
  complete data after a power loss; nothing to do on object storage."""
  if not is_local(root):
    return
  for folder, _, names in os.walk(root):
    for name in names:
      with open(os.path.join(folder, name), "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[str]:
  """A private local folder for the context's life (a non-chief worker's
  throw-away checkpoint): removed with all it holds."""
  folder = tempfile.mkdtemp(prefix=prefix)
  try:
    yield folder
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def free_bytes(path: str) -> Optional[int]:
  """Free space on the disk holding `path`; None on object storage."""
  if not is_local(path):
    return None
  return shutil.disk_usage(path).free


def is_pattern(path: str) -> bool:
  """Whether TF's glob would read `path` as other than itself."""
  return any(c in path for c in "*?[")


@contextlib.contextmanager
def literal(path: str) -> Iterator[str]:
  """`path`, or while the context lasts a pattern-free path to the same
  file or folder.

  TensorFlow's checkpoint reader (and so `tf.saved_model.load`) finds a
  checkpoint by globbing its prefix: in a folder named `runs/lr[0.1]` the
  pattern `[0.1]` matches `0`, `.` or `1`, never the folder itself, and the
  checkpoint "does not exist". Locally a symbolic link in a private
  temporary folder leads to the same files; other file systems get `path`
  unchanged.
  """
  folder = os.path.dirname(path)
  if not is_pattern(folder) or not is_local(path):
    yield path
    return
  scratch = tempfile.mkdtemp(prefix="literal-")
  try:
    os.symlink(os.path.abspath(folder), os.path.join(scratch, "d"))
    yield os.path.join(scratch, "d", os.path.basename(path))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def matching(folder: str, accept: Callable[[str], bool]) -> List[str]:
  """The paths of the entries of `folder` whose names `accept` takes,
  sorted; a folder, not a pattern (`runs/[ab]` never reads `runs/a`)."""
  if not isdir(folder):
    return []
  return [os.path.join(folder, name) for name in listdir(folder)
          if accept(name)]


class LocalLock:
  """An exclusive POSIX record lock (`fcntl.lockf`) on a file of a local
  or NFS folder. The kernel drops it when the process exits or is killed,
  and it works on NFS, where `flock` may not; object storage has no such
  thing (train/assembly/run_lock.py leases instead)."""

  def __init__(self, path: str):
    self.path = path
    self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

  def acquire(self) -> bool:
    """Takes the lock without waiting; False if another process holds it."""
    try:
      fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      return False
    return True

  def read(self) -> bytes:
    return os.pread(self._fd, 4096, 0)

  def write(self, data: bytes) -> None:
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, data, 0)

  def close(self) -> None:
    """Releases the lock (if held) and the file."""
    if self._fd is not None:
      with contextlib.suppress(OSError):
        fcntl.lockf(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
