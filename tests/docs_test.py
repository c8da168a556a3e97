"""The documents stay true to the tree: every file path and module name that
BUILD.md, README.md and the experiment notes' index cite exists (a module
with an attribute, `core/runtime/distribution.agree_any`, must define it),
and README's command blocks fit in 100 columns."""

import ast
import os
import re
from typing import List

import tensorflow as tf

from tests import helpers

DOCUMENTS = ("BUILD.md", "README.md", os.path.join("docs", "experiments",
                                                   "README.md"))
TOPS = ("core", "layers", "train", "tests", "tools", "bench", "configs",
        "docs")
# `dir/file.ext` paths, and `dir/module.attr` or `pkg.module[.attr]` names.
PATH = re.compile(r"(?<![\w/.-])((?:%s)/[\w/.-]*\w)" % "|".join(TOPS))
DOTTED = re.compile(r"(?<![\w/.-])((?:core|layers|train|tools|bench)"
                    r"(?:\.\w+)+)")
FILE_ENDINGS = (".py", ".md", ".cfg", ".sh", ".patch", ".json")


def _defines(path: str, name: str) -> bool:
  with open(path) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.ClassDef,
                         ast.AsyncFunctionDef)) and node.name == name:
      return True
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in node.targets):
      return True
  return False


def missing_references(text: str, root: str = helpers.ROOT) -> List[str]:
  """The paths and module names in `text` that do not exist under `root`."""
  missing = []
  for ref in PATH.findall(text):
    ref = ref.rstrip(".")
    if ref.endswith(FILE_ENDINGS) or ref.endswith("/"):
      if not os.path.exists(os.path.join(root, ref)):
        missing.append(ref)
      continue
    if os.path.exists(os.path.join(root, ref)):
      continue  # a folder
    module, _, attr = ref.rpartition(".")
    path = os.path.join(root, module + ".py")
    if not attr or not os.path.exists(path) or not _defines(path, attr):
      missing.append(ref)
  for ref in DOTTED.findall(text):
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
      base = os.path.join(root, *parts[:cut])
      source = (base + ".py" if os.path.exists(base + ".py")
                else os.path.join(base, "__init__.py"))
      if os.path.exists(source):
        rest = parts[cut:]
        if rest and not (len(rest) == 1 and _defines(source, rest[0])):
          missing.append(ref)
        break
    else:
      missing.append(ref)
  return missing


def unknown_file_names(text: str, root: str = helpers.ROOT) -> List[str]:
  """The bare file names (`GOOGLENET.md`, without a folder) in `text` that
  no file of the repository has (file names the engine writes, `.json`,
  are not looked for)."""
  names = set()
  for _, folders, found in os.walk(root):
    folders[:] = [f for f in folders if not f.startswith(".")]
    names.update(found)
  return [name for name in re.findall(
      r"(?<![\w/.-])([\w-]+\.(?:md|py|cfg|sh|patch))\b", text)
          if name not in names]


def exit_codes() -> List[int]:
  """The values of core/runtime/errors.py's EXIT_* constants."""
  with open(os.path.join(helpers.ROOT, "core", "runtime", "errors.py")) as f:
    tree = ast.parse(f.read())
  return [node.value.value for node in tree.body
          if isinstance(node, ast.Assign)
          and node.targets[0].id.startswith("EXIT_")]


def command_blocks(text: str) -> List[str]:
  """The lines of the ```sh blocks of a markdown text."""
  return [line for block in re.findall(r"```sh\n(.*?)```", text, re.S)
          for line in block.splitlines()]


class DocsTest(tf.test.TestCase):

  def test_every_cited_file_and_module_exists(self):
    for name in DOCUMENTS:
      with open(os.path.join(helpers.ROOT, name)) as f:
        self.assertEqual(missing_references(f.read()), [], msg=name)

  def test_every_bare_file_name_is_a_file_of_the_repository(self):
    for name in DOCUMENTS:
      with open(os.path.join(helpers.ROOT, name)) as f:
        self.assertEqual(unknown_file_names(f.read()), [], msg=name)
    self.assertEqual(unknown_file_names(
        "see GOOGLENET.md, BUILD.md and conv_test.py; writes manifest.json"),
                     ["GOOGLENET.md"])

  def test_build_md_lists_every_exit_code(self):
    with open(os.path.join(helpers.ROOT, "BUILD.md")) as f:
      listed = re.search(r"\*\*Exit codes\*\*(.*?)\n\n", f.read(), re.S)
    self.assertIsNotNone(listed)
    codes = exit_codes()
    self.assertContainsSubset([2, 3, 69, 70, 74, 75], codes)
    for code in codes:
      self.assertRegex(listed.group(1), rf"\b{code} ", msg=code)

  def test_the_check_finds_what_is_missing(self):
    text = ("`core/data/batches.py`, `core/runtime/distribution.agree_any`,"
            " `train.main`, `core.data.batches.replica_batches`, "
            "`core/datasets.py`, `layers/conv.conv2d`, `train.offline`, "
            "`core.data.batches.nothing`, `train.fit`")
    self.assertEqual(missing_references(text), [
        "core/datasets.py", "layers/conv.conv2d", "train.offline",
        "core.data.batches.nothing"])

  def test_design_document_is_the_design(self):
    with open(os.path.join(helpers.ROOT, "BUILD.md")) as f:
      self.assertLessEqual(len(f.read().splitlines()), 450)

  def test_readme_command_lines_fit_in_100_columns(self):
    with open(os.path.join(helpers.ROOT, "README.md")) as f:
      lines = command_blocks(f.read())
    self.assertNotEmpty(lines)
    self.assertEqual([l for l in lines if len(l) >= 100], [])


if __name__ == "__main__":
  tf.test.main()
