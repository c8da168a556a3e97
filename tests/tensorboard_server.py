"""TensorBoard itself, on loopback, for tests that check what a user sees:
each dashboard's tags through its HTTP API (what the browser asks for)."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from tests import helpers


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Board:
  """A running TensorBoard; `get` returns a decoded JSON answer or bytes."""

  def __init__(self, port: int):
    self.base = f"http://127.0.0.1:{port}"

  def get(self, path: str, **query):
    url = self.base + path + ("?" + urllib.parse.urlencode(query)
                              if query else "")
    with urllib.request.urlopen(url, timeout=30) as answer:
      body = answer.read()
      kind = answer.headers.get("Content-Type", "")
    return json.loads(body) if "json" in kind else body

  def post(self, path: str, body: dict):
    """A JSON request, as the HParams dashboard makes."""
    request = urllib.request.Request(
        self.base + path, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
      return json.loads(answer.read())

  def hparams_sessions(self, *, wait_for, timeout: float = 120):
    """The HParams dashboard's session groups; waits (bounded) until their
    metrics include `wait_for`, a (run, tag) pair."""
    deadline = time.monotonic() + timeout
    while True:
      groups = self.post("/data/plugin/hparams/session_groups", {
          "experimentName": "", "startIndex": 0, "sliceSize": 100,
          "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
          "colParams": []})["sessionGroups"]
      found = {(m["name"]["group"], m["name"]["tag"]) for g in groups
               for m in g.get("metricValues", [])}
      if tuple(wait_for) in found or time.monotonic() > deadline:
        return groups
      time.sleep(1)

  def tags(self, plugin: str, *, wait_for=None, timeout: float = 120):
    """{run: {tag: ...}} of a dashboard; waits (bounded) until `wait_for`,
    a (run, tag) pair, is there, as TensorBoard loads files lazily."""
    deadline = time.monotonic() + timeout
    while True:
      found = self.get(f"/data/plugin/{plugin}/tags")
      if wait_for is None or wait_for[1] in found.get(wait_for[0], {}):
        return found
      if time.monotonic() > deadline:
        return found
      time.sleep(0.5)


@contextlib.contextmanager
def tensorboard(logdir: str):
  """Starts `tensorboard --logdir` on a free loopback port; ends it by pid."""
  port = _free_port()
  proc = subprocess.Popen(
      [os.path.join(os.path.dirname(sys.executable), "tensorboard"),
       f"--logdir={logdir}", "--host=127.0.0.1", f"--port={port}",
       "--reload_interval=1", "--load_fast=false"],
      cwd=helpers.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    board = Board(port)
    deadline = time.monotonic() + 120
    while True:
      try:
        board.get("/data/runs")
        break
      except (urllib.error.URLError, ConnectionError):
        if proc.poll() is not None or time.monotonic() > deadline:
          raise RuntimeError("TensorBoard did not start") from None
        time.sleep(0.3)
    yield board
  finally:
    proc.kill()
    proc.wait(timeout=30)
