"""The house rules the code review asked for, checked on the source: short
functions in train/, no data-set facts written as literals outside the data
sets' own definitions (they flow from core/data/types.DatasetInfo), floors
that import only downward, an import graph without circles, and every file
call of core/ and train/ in one place (core/runtime/files.py), so a path on
object storage is never handed to a local-only call, and every choice list in
a module that loads no TensorFlow."""

import ast
import glob
import os
from typing import Dict, List, Set

import tensorflow as tf

from tests import helpers

MAX_FUNCTION_LINES = 45  # "no function in train/ over about 40 lines"
# Floors, lowest first: each may import only itself and the floors below.
FLOORS = ("layers", "core", "train")
# Where the IDX sets' facts are defined (their side, 28, and 10 classes).
DATA_SET_DEFINITIONS = (os.path.join("core", "data", "datasets.py"),)
# Byte layouts of image formats: their 10s and 28s are offsets into a
# header, not a class count or an image side.
IMAGE_FORMATS = (os.path.join("core", "data", "headers.py"),)
# The literal 10s that are not a class count, each with its reason.
NOT_A_CLASS_COUNT = {
    ("core/data/augment.py", "max_attempts=10"),  # Inception's crop tries
    ("core/runtime/distribution.py", "HEARTBEAT_TIMEOUT_S = 10"),
    ("train/startup/config.py", "10, \"Stop after"),  # --max_bad_steps
}
# The one place file calls may be made, and the other calls that look like
# file calls but are not on the user's storage, each with its reason.
FILE_LAYER = "core/runtime/files.py"
NOT_STORAGE = {
    # The process's own stderr (file descriptors and a pipe), not files.
    ("train/startup/native_stderr.py", "os.fdopen"),
    ("train/startup/native_stderr.py", "open"),
    ("train/startup/native_stderr.py", "os.open"),
    # A --flagfile is read by absl with Python's open (local files only);
    # this reads the same file the same way to name its bad byte.
    ("train/startup/cli.py", "open"),
    # The kernel's mount table, and a local path's links resolved to find
    # the mount it is on (only local paths reach it): no file is read.
    ("core/runtime/mounts.py", "open"),
    ("core/runtime/mounts.py", "os.path.realpath"),
}
# os, os.path, glob, shutil, fcntl, tempfile and pathlib calls that touch
# files (os.path.join and friends only build strings; shutil.which reads
# PATH).
_OS_FILE_CALLS = {
    "open", "fdopen", "makedirs", "mkdir", "rename", "replace", "remove",
    "unlink", "rmdir", "removedirs", "listdir", "scandir", "walk", "stat",
    "lstat", "symlink", "link", "fsync", "truncate", "chmod", "utime",
    "exists", "lexists", "isdir", "isfile", "islink", "getsize", "getmtime",
    "realpath"}
_MODULES_OF_FILE_CALLS = {"glob", "shutil", "fcntl", "tempfile", "pathlib",
                          "io"}


def file_calls(path: str, source: str) -> List[str]:
  """The file calls in `source` (a file of `path`) that bypass the file
  layer: builtin open, and os / glob / shutil / fcntl / tempfile calls."""
  rel = os.path.relpath(path, helpers.ROOT).replace(os.sep, "/")
  found = []
  for node in ast.walk(ast.parse(source)):
    if not isinstance(node, ast.Call):
      continue
    name = ast.unparse(node.func)
    parts = name.split(".")
    bypass = (name == "open" or (
        parts[0] == "os" and parts[-1] in _OS_FILE_CALLS) or (
            parts[0] in _MODULES_OF_FILE_CALLS and name != "shutil.which"))
    if bypass and (rel, name) not in NOT_STORAGE:
      found.append(f"{rel}:{node.lineno}: {name}(...)")
  return found


def _tree(path):
  with open(path) as f:
    return ast.parse(f.read(), filename=path)


def _sources(*folders):
  return sorted(p for folder in folders for p in glob.glob(
      os.path.join(helpers.ROOT, folder, "**", "*.py"), recursive=True))


def _module_name(path: str) -> str:
  rel = os.path.relpath(path, helpers.ROOT)[:-len(".py")]
  parts = rel.split(os.sep)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths: List[str]) -> Dict[str, Set[str]]:
  """module -> the project modules it imports, anywhere in the file (an
  import inside a function is an edge too: it is how circles hide)."""
  modules = {_module_name(p): p for p in paths}
  graph = {}
  for name, path in modules.items():
    edges = set()
    for node in ast.walk(_tree(path)):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        targets = [f"{node.module}.{a.name}" for a in node.names]
        targets = [t if t in modules else node.module for t in targets]
      else:
        continue
      edges.update(t for t in targets if t in modules and t != name)
    graph[name] = edges
  return graph


# train/'s folders, top floor first (BUILD.md, "The house"): the commands
# (train/*.py), the assembler, the loop, the loop's artefacts, the start-up
# helpers and the option table.
TRAIN_FLOORS = ("commands", "assembly", "loop", "artefacts", "startup")


def train_floor(module: str) -> str:
  """The floor of a module of train/ (TRAIN_FLOORS)."""
  parts = module.split(".")
  return (parts[1] if len(parts) > 1 and parts[1] in TRAIN_FLOORS[1:]
          else "commands")


def upward_in_train(graph: Dict[str, Set[str]]) -> List[str]:
  """The imports of `graph` from a floor of train/ to a higher one."""
  rank = lambda module: TRAIN_FLOORS.index(train_floor(module))
  return [f"{module} imports {target}"
          for module, targets in sorted(graph.items())
          if module.startswith("train")
          for target in sorted(targets)
          if target.startswith("train.") and rank(target) < rank(module)]


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
  """One import circle as [a, b, ..., a], or [] when there is none. A
  package's __init__ is left out as a target: importing `core.data.x`
  runs `core.data`'s __init__, but that is no edge back."""
  state: Dict[str, int] = {}
  stack: List[str] = []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = 2
    return []

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return []


def choice_modules() -> List[str]:
  """The modules that hold choice lists (every `choices.py`): the flags
  offer their lists before TensorFlow loads, and the engine reads them."""
  return [_module_name(p) for p in _sources(*FLOORS)
          if os.path.basename(p) == "choices.py"]


def first_to_load_tensorflow(modules: List[str]) -> str:
  """The first of `modules` whose import, in a fresh process, loads
  TensorFlow ("" when none does)."""
  done = helpers.python("-c", "import importlib, sys\n"
                        f"for name in {modules!r}:\n"
                        "  importlib.import_module(name)\n"
                        "  if 'tensorflow' in sys.modules:\n"
                        "    print(name)\n"
                        "    break\n")
  if done.returncode:
    raise RuntimeError(done.stderr)
  return done.stdout.strip()


def literal_facts(path: str, source: str) -> List[str]:
  """The IDX sets' side (28) and class count (10) written as int literals
  in `source` (a file of `path`), less the known 10s that count something
  else."""
  rel = os.path.relpath(path, helpers.ROOT).replace(os.sep, "/")
  lines = source.splitlines()
  found = []
  for node in ast.walk(ast.parse(source)):
    if not (isinstance(node, ast.Constant) and type(node.value) is int):
      continue
    line = lines[node.lineno - 1]
    if node.value == 28 or (node.value == 10 and not any(
        rel == f and fragment in line for f, fragment in NOT_A_CLASS_COUNT)):
      found.append(f"{rel}:{node.lineno}: {line.strip()}")
  return found


class HouseTest(tf.test.TestCase):

  def test_functions_in_train_are_short(self):
    long = []
    for path in _sources("train"):
      for node in ast.walk(_tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
          lines = node.end_lineno - node.lineno + 1
          if lines > MAX_FUNCTION_LINES:
            long.append(f"{os.path.basename(path)}:{node.name} ({lines})")
    self.assertEmpty(long)

  def test_no_image_side_or_class_count_literals_outside_the_data_sets(self):
    # The model, export and summaries read DatasetInfo; only the IDX sets'
    # own definitions name their side and class count.
    found = []
    for path in _sources("train", "core") + [os.path.join(
        helpers.ROOT, "layers", "googlenet.py")]:
      if path.endswith(DATA_SET_DEFINITIONS + IMAGE_FORMATS):
        continue
      with open(path) as f:
        found += literal_facts(path, f.read())
    self.assertEmpty(found)
    for path in _sources("train", "core", "layers"):
      if path.endswith(DATA_SET_DEFINITIONS):
        continue
      with open(path) as f:
        text = f.read()
      for name in ("NUM_CLASSES", "IMAGE_SHAPE", "CLASS_NAMES", "INPUT_SHAPE"):
        self.assertNotIn(name, text, msg=path)

  def test_the_literal_check_finds_a_class_count_and_a_side(self):
    path = os.path.join(helpers.ROOT, "train", "loop", "trainer.py")
    self.assertLen(literal_facts(path, "x = zeros([n, 10])\ny = 28\n"), 2)
    self.assertEmpty(literal_facts(path, "x = zeros([n, 11])\n"))

  def test_file_calls_go_through_the_file_layer(self):
    found = []
    for path in _sources("train", "core"):
      if path.replace(os.sep, "/").endswith(FILE_LAYER):
        continue
      with open(path) as f:
        found += file_calls(path, f.read())
    self.assertEmpty(found)

  def test_the_file_call_check_finds_each_kind(self):
    path = os.path.join(helpers.ROOT, "train", "loop", "trainer.py")
    planted = ("open(p)\nos.makedirs(d)\nos.path.exists(p)\nglob.glob(p)\n"
               "shutil.rmtree(d)\nfcntl.lockf(f, 1)\ntempfile.mkdtemp()\n")
    self.assertLen(file_calls(path, planted), 7)
    self.assertEmpty(file_calls(path, "os.path.join(a, b)\nshutil.which(x)\n"
                                "files.exists(p)\n"))

  def test_floors_import_only_downward(self):
    upward = []
    graph = import_graph(_sources(*FLOORS))
    for module, targets in graph.items():
      floor = FLOORS.index(module.split(".")[0])
      upward += [f"{module} imports {t}" for t in sorted(targets)
                 if FLOORS.index(t.split(".")[0]) > floor]
    self.assertEmpty(upward)

  def test_train_folders_import_only_downward(self):
    graph = import_graph(_sources("train"))
    self.assertGreater(sum(len(t) for t in graph.values()), 40)
    self.assertEmpty(upward_in_train(graph))

  def test_the_train_floor_check_finds_an_upward_import(self):
    self.assertEqual(upward_in_train({
        "train.startup.options": {"train.startup.config",
                                  "train.artefacts.report"},
        "train.assembly.build": {"train.loop.trainer", "train.main"},
        "train.main": {"train.assembly.build"}}), [
            "train.assembly.build imports train.main",
            "train.startup.options imports train.artefacts.report"])

  def test_no_import_circles(self):
    graph = import_graph(_sources(*FLOORS, "tools"))
    self.assertGreater(sum(len(t) for t in graph.values()), 100)
    self.assertEqual(find_cycle(graph), [])

  def test_choice_lists_live_in_modules_without_tensorflow(self):
    # The command line parses flags, then sets TF's environment (oneDNN off
    # for --deterministic) before TF loads.
    modules = choice_modules()
    self.assertContainsSubset({"layers.choices", "core.data.choices",
                               "core.optim.choices", "core.runtime.choices"},
                              modules)
    self.assertEqual(first_to_load_tensorflow(modules), "")

  def test_the_tensorflow_check_finds_a_module_that_loads_it(self):
    self.assertEqual(first_to_load_tensorflow(
        ["layers.choices", "layers.googlenet"]), "layers.googlenet")

  def test_the_circle_check_finds_a_circle(self):
    self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}),
                     ["a", "b", "c", "a"])
    self.assertEqual(find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}), [])


if __name__ == "__main__":
  tf.test.main()
