"""The progress display: today's lines where stdout is no terminal, a bar
rewritten in place on one, tested through real pseudo-terminals (the
display alone, and the training command)."""

import errno
import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from unittest import mock

import tensorflow as tf

from tests import helpers
from train.artefacts.progress import Point, Progress, duration

TRACING = Point(5, 20, 0.625, 1.0, 0.5, 1e-3, 40.0)
LATER = Point(8, 20, 1.0, 0.25, 0.875, 1e-3, 24.0, 4 / 3, 2.0)


def open_terminal(columns=0):
  """A pseudo-terminal: (its master's fd, a text stream on its slave), the
  slave `columns` wide (0: the size a fresh one reports)."""
  master, slave = pty.openpty()
  if columns:
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", 24, columns, 0, 0))
  return master, open(slave, "w", encoding="utf-8")


def read_all(master, proc=None) -> str:
  """What the slave's writers wrote, once they closed it, with the
  terminal's \\r\\n for \\n put back to \\n (a bar's own \\r stays). Each
  wait for output is bounded (10 minutes: a command's whole run)."""
  chunks = []
  while True:
    ready, _, _ = select.select([master], [], [], 600)
    if not ready:
      if proc is not None:
        proc.kill()
      raise AssertionError("no output for 10 minutes")
    try:
      chunk = os.read(master, 65536)
    except OSError as e:  # Linux: EIO once every slave is closed
      if e.errno != errno.EIO:
        raise
      break
    if not chunk:
      break
    chunks.append(chunk)
  os.close(master)
  return b"".join(chunks).decode().replace("\r\n", "\n")


class PointTest(tf.test.TestCase):

  def test_plain_lines_are_todays(self):
    self.assertEqual(TRACING.line(), "step 5/20 epoch 0.62 loss 1.0000 acc "
                     "0.5000 lr 1.00e-03 40.0 img/s (tracing included; eta "
                     "from the next line)")
    self.assertEqual(LATER.line(), "step 8/20 epoch 1.00 loss 0.2500 acc "
                     "0.8750 lr 1.00e-03 24.0 img/s 1s/epoch eta 2s")
    self.assertEqual(LATER._replace(skipped_images=3.0).line(),
                     LATER.line() + " (3 unreadable images skipped)")

  def test_durations_read_as_people_write_them(self):
    self.assertEqual([duration(s) for s in (4.4, 59.6, 723, 7500)],
                     ["4s", "1m00s", "12m03s", "2h05m"])

  def test_the_bar(self):
    self.assertEqual(
        LATER.bar(120), " 8/20 [============>.................] 24 img/s "
        "loss 0.2500 acc 0.8750 lr 1.0e-03 eta 2s")
    done = LATER._replace(step=20).bar(120)
    self.assertIn("[" + "=" * 30 + "]", done)

  def test_the_bar_fits_the_terminal(self):
    for columns in (200, 80, 60, 40, 10):
      self.assertLessEqual(len(LATER.bar(columns)), columns - 1, columns)
    self.assertIn(" [======>........] 24 img/s", LATER.bar(80))  # shorter
    self.assertTrue(LATER.bar(60).startswith(" 8/20 24 img/s"))  # none
    # The bar keeps its width while the numbers after it grow.
    self.assertEqual(TRACING.bar(90).index("]"), LATER.bar(90).index("]"))


class ProgressTest(tf.test.TestCase):

  def test_lines_where_there_is_no_terminal(self):
    lines = []
    display = Progress(lines.append)
    display.show(TRACING)
    display("eval at step 5: loss 0.5000")
    display.show(LATER)
    display.end_bar()
    self.assertEqual(lines, [TRACING.line(), "eval at step 5: loss 0.5000",
                             LATER.line()])

  def test_print_draws_a_bar_only_when_stdout_is_a_terminal(self):
    read, write = os.pipe()
    os.close(read)
    with open(write, "w") as pipe, mock.patch.object(sys, "stdout", pipe):
      self.assertIsNone(Progress.of(print).terminal)
    master, terminal = open_terminal()
    with terminal, mock.patch.object(sys, "stdout", terminal):
      self.assertIs(Progress.of(print).terminal, terminal)
    os.close(master)
    lines = []
    self.assertIsNone(Progress.of(lines.append).terminal)
    display = Progress(lines.append)
    self.assertIs(Progress.of(display), display)

  def test_a_terminal_sees_one_line_rewritten_in_place(self):
    master, terminal = open_terminal(columns=100)
    with terminal:
      display = Progress(lambda line: print(line, file=terminal,
                                            flush=True), terminal)
      display.show(TRACING._replace(skipped_images=12.0))
      display.show(LATER)  # shorter: padded over the longer one
      display("eval at step 8: loss 0.5000")
      display.show(LATER._replace(step=10))
      display.end_bar()
      display.end_bar()  # nothing to end: no empty line
      display("done")
    text = read_all(master)
    first, message, second, last, end = text.split("\n")
    self.assertEqual((message, last, end), ("eval at step 8: loss 0.5000",
                                            "done", ""))
    # Two bars on one line, the second drawn over the first.
    draws = first.split("\r")
    self.assertEqual(draws[0], "")
    self.assertEqual(draws[1], TRACING._replace(skipped_images=12.0).bar(100))
    self.assertEqual(draws[2].rstrip(" "), LATER.bar(100))
    self.assertEqual(len(draws[2]), len(draws[1]))
    self.assertEqual(second, "\r" + LATER._replace(step=10).bar(100))
    self.assertLess(max(len(d) for d in draws), 100)

  def test_the_training_command_draws_its_bar_on_a_terminal(self):
    master, terminal = open_terminal()
    model_dir = os.path.join(self.get_temp_dir(), "run")
    with terminal, open(os.path.join(self.get_temp_dir(), "stderr"),
                        "w+") as err:
      # pylint: disable-next=protected-access
      proc = subprocess.Popen(
          [sys.executable, "-m", "train.main",
           *helpers.small_run_flags(model_dir, "--train_steps=10",
                                    "--steps_per_loop=2", "--eval_every=5",
                                    "--export=none", helpers.ON_CPU)],
          cwd=helpers.ROOT, env=helpers._env(), stdin=subprocess.DEVNULL,
          stdout=terminal, stderr=err)
    text = read_all(master, proc)
    self.assertEqual(proc.wait(timeout=60), 0, text)
    # A bar per compiled chunk, no plain progress line.
    self.assertEqual(re.findall(r"\r *(\d+)/10 \[", text),
                     ["2", "4", "5", "6", "8", "10"])
    self.assertNotRegex(text, r"(^|\n)step \d+/10")
    # Rewritten in place: no newline between chunks, only before a message.
    self.assertRegex(text, r"\r 2/10 \[[^\n]*\r 4/10 \[[^\n]*\r 5/10 "
                     r"\[[^\n]*\neval at step 5: ")
    self.assertRegex(text, r"\r10/10 \[=+\][^\n]*\neval at step 10: ")
    self.assertRegex(text, r"\ntest accuracy [^\n]*\n$")


if __name__ == "__main__":
  tf.test.main()
