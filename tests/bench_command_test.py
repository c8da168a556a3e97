"""bench/command.py: the user's command timed by whole runs of two lengths."""

import tensorflow as tf

from bench import command
from tests import helpers


class ArithmeticTest(tf.test.TestCase):

  def test_per_step_cancels_what_both_runs_pay(self):
    # 40 s of start-up, tracing and the final test in both; 1.5 s a step.
    short = command.Run(20, 40 + 20 * 1.5, ())
    long = command.Run(40, 40 + 40 * 1.5, ())
    self.assertAlmostEqual(command.per_step(short, long), 1.5)

  def test_per_step_needs_the_longer_run_second(self):
    with self.assertRaisesRegex(ValueError, "`long` must run more steps "
                                r"than `short`; received 8 and 8 steps\."):
      command.per_step(command.Run(8, 10.0, ()), command.Run(8, 12.0, ()))

  def test_between_progress_lines_skips_the_traced_first_line(self):
    # Steps 2, 4, 6, 8 arrive at 30 s (tracing), then 1.0, 1.2, 1.1 s apart.
    marks = ((2, 30.0), (4, 31.0), (6, 32.2), (8, 33.3))
    self.assertAlmostEqual(command.between_progress_lines(marks), 0.55)
    self.assertIsNone(command.between_progress_lines(((2, 30.0),)))


class RunTest(tf.test.TestCase):

  def test_times_a_whole_run_and_its_progress_lines(self):
    flags = [a for a in helpers.small_run_flags("/unused", helpers.ON_CPU)
             if not a.startswith(("--model_dir", "--steps_per_loop",
                                  "--validation_size"))]
    run = command.run(flags, steps=4, steps_per_loop=2)
    self.assertEqual(run.steps, 4)
    self.assertEqual([step for step, _ in run.marks], [2, 4])
    self.assertLess(run.marks[-1][1], run.seconds)

  def test_a_failing_command_names_its_error(self):
    with self.assertRaisesRegex(RuntimeError,
                                r"train.main exited \d+: .*image_size"):
      command.run(["--dataset=synthetic", "--image_size=0"], steps=2,
                  steps_per_loop=2)
