"""The controller's schedule, in process, with a stub run and a fake clock:
when it runs chunks, evaluates, checkpoints, and stops on divergence and on
preemption. No model is built; each test runs in milliseconds."""

import io
import signal
import types

import numpy as np
import tensorflow as tf

from core.data import datasets
from core.runtime.errors import Preempted, TrainingError
from train.artefacts.progress import Progress
from train.loop.controller import Controller, Outputs
from train.loop.evaluator import Evaluation
from train.loop.preemption import PreemptionWatcher
from train.loop.profiling import ProfileWindow
from train.loop.schedule import Schedule
from train.loop.state import Plateau


class StubEngine:
  """The state of a stub run and every method the controller may call;
  `views` hands each to the noun that has it (a trainer, an evaluator with
  its weight sets, a stop vote), so a call on the wrong noun fails. Counts
  steps like the real trainer; `on_chunk(step)` may inject faults."""

  def __init__(self, start=0, on_chunk=None, missed=False, accuracy=None):
    self.global_step, self.chunks, self.evaluated = start, [], []
    # The validation accuracy at each step (default 0.75 everywhere).
    self.accuracy = accuracy or (lambda step: 0.75)
    self.missed = missed  # the restored step's validation was interrupted
    self.bad, self.last_bad = 0, -1
    self.on_chunk = on_chunk or (lambda engine, stop: None)
    self.iterators, self.offered, self.purposes = [], [], []
    self.keeps_best = False  # --export=best's record (best_validation)
    self.restored_best = None  # (accuracy, step) before a resume

  def iterator(self, split, start_step):
    self.iterators.append(start_step)
    return f"iterator@{start_step}"

  def train(self, iterator, num_steps):
    self.chunks.append((self.global_step, num_steps))
    self.global_step += num_steps
    self.on_chunk(self, self.global_step)
    return {"loss/total": 1.0, "accuracy/main": 0.5, "learning_rate": 1e-3}

  def divergence(self):
    return self.bad, self.last_bad

  def histograms(self):
    return {"gradient_norms": np.ones(3)}

  def agree(self, requested):
    return requested  # one process: its own request is the agreement

  def final_step(self):
    return -1

  def validation_missed(self, step):
    return self.missed and step == self.global_step

  def offer_best(self, accuracy, step):
    self.offered.append((accuracy, step))

  def best_validation(self):
    # The record --export=best keeps (train/loop/weights.py): None without
    # one (`keeps_best` False, as with --export=last); else the best of the
    # record restored at a resume (`restored_best`) and this process's
    # offers.
    if not self.keeps_best:
      return None
    best = [self.restored_best] if self.restored_best else []
    return max(best + self.offered, key=lambda b: (b[0], -b[1]),
               default=None)

  def misclassified(self, split):
    return (np.zeros([1, 4, 4, 1], np.uint8), np.array([0]),
            np.array([1]))

  def evaluate(self, split, purpose="validation"):
    self.purposes.append(purpose)
    self.evaluated.append((self.global_step, len(split.labels)))
    accuracy = (0.75 if purpose == "final"
                else self.accuracy(self.global_step))
    return Evaluation({"loss/main": 0.5, "accuracy/main": accuracy,
                       "accuracy/top5": 1.0}, np.eye(2), len(split.labels))


NOUNS = {
    "trainer": ("iterator", "train", "divergence", "histograms"),
    "weights": ("final_step", "validation_missed", "offer_best",
                "best_validation"),
    "evaluator": ("evaluate", "misclassified"),
    "vote": ("agree",),
}


def views(engine):
  """(trainer, evaluator, vote) over `engine`, each with only its own
  methods (looked up on `engine` at each call, so tests may replace one)."""
  def view(noun, **more):
    methods = {name: (lambda name: lambda *a, **k: getattr(engine, name)(
        *a, **k))(name) for name in NOUNS[noun]}
    return types.SimpleNamespace(**methods, **more)
  trainer = _Counting(view("trainer", steps_per_epoch=8,
                           feed=types.SimpleNamespace(
                               batch=types.SimpleNamespace(
                                   global_batch_size=4))), engine)
  return trainer, view("evaluator", weights=view("weights")), view("vote")


class _Counting:
  """A trainer view whose global_step is the stub run's."""

  def __init__(self, view, engine):
    self._view, self._engine = view, engine

  def __getattr__(self, name):
    return getattr(self._view, name)

  @property
  def global_step(self):
    return self._engine.global_step


class Recorder:
  """Stands in for Summaries and Checkpointer: records each call."""

  def __init__(self):
    self.calls = []

  def __getattr__(self, name):
    return lambda *args, **kwargs: self.calls.append((name, args))

  def named(self, name):
    return [args for n, args in self.calls if n == name]


def make_data(validation=4, test=6):
  split = lambda n: datasets.Split(np.zeros([n, 2, 2, 1], np.uint8),
                                   np.zeros([n], np.int32))
  return datasets.Splits(split(8), split(validation), split(test),
                         datasets.DatasetInfo("tiny", (2, 2, 1), ("a", "b")))


class FakeClock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    self.now += 0.5  # every reading is half a second after the last
    return self.now


def make_controller(engine, *, total=20, per_loop=5, checkpoint_every=10,
                    eval_every=8, profile=(), data=None, max_bad_steps=3,
                    plateau=None, report=None):
  summaries, checkpointer, lines, exports = Recorder(), Recorder(), [], []
  traces = []
  profiler = ProfileWindow("/unused", profile,
                           start=lambda d: traces.append(("start", engine
                                                          .global_step)),
                           stop=lambda: traces.append(("stop",
                                                       engine.global_step)))
  trainer, evaluator, vote = views(engine)
  controller = Controller(
      trainer=trainer, evaluator=evaluator, vote=vote,
      data=data or make_data(),
      schedule=Schedule(total, per_loop, checkpoint_every, eval_every,
                        max_bad_steps=max_bad_steps),
      outputs=Outputs(summaries, checkpointer,
                      lambda step: exports.append(step) or f"/export/{step}",
                      "/runs/x"),
      watcher=PreemptionWatcher(), profiler=profiler, plateau=plateau,
      report=report or lines.append, clock=FakeClock())
  controller.record = dict(summaries=summaries, checkpointer=checkpointer,
                           lines=lines, exports=exports, traces=traces)
  return controller


class ControllerTest(tf.test.TestCase):

  def test_chunks_evaluations_checkpoints_and_export(self):
    engine = StubEngine()
    controller = make_controller(engine)
    result = controller.run()
    self.assertEqual(engine.chunks, [(0, 5), (5, 3), (8, 2), (10, 5),
                                     (15, 1), (16, 4)])
    self.assertEqual(engine.iterators, [0])
    # Validation at 8, 16 and the last step, then the test split once.
    self.assertEqual(engine.evaluated, [(8, 4), (16, 4), (20, 4), (20, 6)])
    record = controller.record
    self.assertEqual([a[0] for a in record["checkpointer"].named("save")],
                     [10, 20])
    self.assertEqual(record["exports"], [20])
    self.assertEqual(result.global_step, 20)
    self.assertEqual(result.test_accuracy, 0.75)
    self.assertEqual(result.export_path, "/export/20")
    self.assertEqual(record["lines"][-1],
                     "test accuracy 0.7500 (loss 0.5000, 6 images, step 20)")

  def test_last_lines_name_the_step_of_the_best_weights(self):
    # --export=best chose the weights validated at step 16, not the last.
    engine = StubEngine()
    engine.final_step = lambda: 16
    controller = make_controller(engine)
    controller.run()
    lines = controller.record["lines"]
    self.assertIn("exported SavedModel to /export/20 (the weights of step "
                  "16, the best on validation)", lines)
    self.assertEqual(lines[-1], "test accuracy 0.7500 (loss 0.5000, 6 images, "
                     "step 20, the weights of step 16)")

  def test_train_summaries_at_every_chunk_with_throughput(self):
    controller = make_controller(StubEngine())
    controller.run()
    train = [a for a in controller.record["summaries"].named("scalars")
             if a[0] == "train"]
    self.assertEqual([a[2] for a in train], [5, 8, 10, 15, 16, 20])
    # 5 steps of 4 images between two clock readings 0.5 s apart.
    self.assertEqual(train[0][1]["images_per_second"], 40.0)
    # The first chunk traces the step: no ETA from it.
    self.assertNotIn("eta_seconds", train[0][1])
    self.assertIn("step 5/20 epoch 0.62 loss 1.0000 acc 0.5000 lr 1.00e-03 "
                  "40.0 img/s (tracing included; eta from the next line)",
                  controller.record["lines"])
    # The ETA comes from the chunks after it: steps 5-8 took 0.5 s, so an
    # epoch (8 steps) 1.33 s and the 12 steps left 2 s (with the first
    # chunk counted: 1.5 s).
    self.assertAlmostEqual(train[1][1]["seconds_per_epoch"], 4 / 3)
    self.assertAlmostEqual(train[1][1]["eta_seconds"], 2.0)
    self.assertIn("step 8/20 epoch 1.00 loss 1.0000 acc 0.5000 lr 1.00e-03 "
                  "24.0 img/s 1s/epoch eta 2s", controller.record["lines"])
    self.assertRegex(controller.record["lines"][-2], r"^run ended at step 20 "
                     r"after \d+s; best validation accuracy 0\.7500 at step "
                     r"8 \(epoch 1\.00\)$")
    self.assertTrue(controller.record["summaries"].named("close"))

  def test_summary_counts_the_validations_before_a_resume(self):
    # Resumed at step 10: this process validates at 16 and 20 (0.75); the
    # checkpointed record has 0.9 from step 8, before the resume.
    engine = StubEngine(start=10)
    engine.keeps_best, engine.restored_best = True, (0.9, 8)
    controller = make_controller(engine)
    controller.run()
    self.assertRegex(controller.record["lines"][-2], r"^run ended at step "
                     r"20 after \d+s; best validation accuracy 0\.9000 at "
                     r"step 8 \(epoch 1\.00\)$")
    # The plateau's record counts too (runs without --export=best).
    engine = StubEngine(start=10)
    plateau = Plateau(patience=2)
    plateau.record(0.95, 4)
    controller = make_controller(engine, plateau=plateau)
    controller.run()
    self.assertIn("best validation accuracy 0.9500 at step 4 (epoch 0.50)",
                  controller.record["lines"][-2])

  def test_summary_without_a_record_counts_this_process(self):
    # --export=last, no plateau: this process's validations (0.75 at 16
    # and 20, the first kept), whatever came before the resume.
    accuracy = {16: 0.75, 20: 0.75}
    controller = make_controller(StubEngine(
        start=10, accuracy=lambda step: accuracy.get(step, 0.5)))
    controller.run()
    self.assertRegex(controller.record["lines"][-2], r"best validation "
                     r"accuracy 0\.7500 at step 16 \(epoch 2\.00\)$")
    # A plateau that has not yet recorded a validation (best step -1) adds
    # nothing: without validations the line names none.
    controller = make_controller(StubEngine(start=10), plateau=Plateau(),
                                 data=make_data(validation=0))
    controller.run()
    self.assertRegex(controller.record["lines"][-2],
                     r"^run ended at step 20 after \d+s$")

  def test_misclassified_grid_at_each_validation_only(self):
    controller = make_controller(StubEngine())
    controller.run()
    grids = controller.record["summaries"].named("image")
    self.assertEqual([(a[0], a[1], a[3]) for a in grids],
                     [("eval", "misclassified", 8),
                      ("eval", "misclassified", 16),
                      ("eval", "misclassified", 20)])
    # One tile: the stub's image labelled a, predicted b.
    self.assertEqual(grids[0][2].dtype, np.uint8)
    self.assertEqual(grids[0][2].shape[-1], 3)

  def test_no_grid_computed_where_summaries_are_off(self):
    engine = StubEngine()
    asked = []
    engine.misclassified = lambda split: asked.append(split) or (
        np.zeros([1, 4, 4, 1], np.uint8), np.array([0]), np.array([1]))
    controller = make_controller(engine)
    controller.summaries.enabled = False  # another worker: writes nothing
    controller.run()
    self.assertEqual(asked, [])
    self.assertEqual(controller.record["summaries"].named("image"), [])

  def test_histograms_every_n_steps_and_never_when_off(self):
    controller = make_controller(StubEngine())
    controller.schedule = Schedule(20, 5, 10, 8, histogram_every=6)
    controller.run()
    self.assertEqual([a[2] for a in controller.record["summaries"].named(
        "histograms")], [6, 12, 18])
    off = make_controller(StubEngine())
    off.run()
    self.assertEqual(off.record["summaries"].named("histograms"), [])

  def test_no_validation_split_means_no_validation(self):
    engine = StubEngine()
    make_controller(engine, data=make_data(validation=0)).run()
    self.assertEqual(engine.evaluated, [(20, 6)])

  def test_no_test_split_skips_the_test_with_a_note(self):
    engine = StubEngine()
    controller = make_controller(engine, data=make_data(test=0))
    result = controller.run()
    self.assertIsNone(result.test_accuracy)
    self.assertEqual(result.export_path, "/export/20")
    self.assertIn("no test split", controller.record["lines"][-1])

  def test_resumed_at_the_end_only_tests_and_exports(self):
    engine = StubEngine(start=20)
    controller = make_controller(engine)
    controller.run()
    self.assertEqual(engine.chunks, [])
    self.assertEqual(engine.evaluated, [(20, 6)])
    self.assertEqual(controller.record["exports"], [20])

  def test_a_validation_a_signal_interrupted_is_run_first_and_saved(self):
    engine = StubEngine(start=16, missed=True)
    controller = make_controller(engine)
    controller.run()
    # 16 is a validation step: validated, offered and saved again before
    # training goes on; then 20 (the end) as always.
    self.assertEqual(engine.evaluated[:2], [(16, 4), (20, 4)])
    self.assertEqual(engine.offered[0], (0.75, 16))
    saves = [args[0] for name, args in controller.record["checkpointer"]
             .calls if name == "save"]
    self.assertEqual(saves[0], 16)
    self.assertIn("validating step 16 first: a signal interrupted its "
                  "validation before the checkpoint",
                  controller.record["lines"])
    # Resumed at a step that is no validation step: nothing to redo.
    engine = StubEngine(start=12, missed=True)
    make_controller(engine).run()
    self.assertEqual(engine.evaluated[0][0], 16)

  def test_resume_mid_run_starts_the_stream_at_the_step(self):
    engine = StubEngine(start=12)
    make_controller(engine).run()
    self.assertEqual(engine.iterators, [12])
    self.assertEqual(engine.chunks[0], (12, 3))

  def test_divergence_stops_before_the_next_chunk(self):
    def diverge(engine, stop):
      if stop >= 8:
        engine.bad, engine.last_bad = 3, stop - 1

    engine = StubEngine(on_chunk=diverge)
    controller = make_controller(engine)
    with self.assertRaisesRegex(TrainingError, "training diverged: 3 "
                                "consecutive steps up to step 7 .*lower "
                                "--learning_rate"):
      controller.run()
    self.assertEqual(engine.global_step, 8)
    self.assertEqual(controller.record["checkpointer"].named("save"), [])
    self.assertEqual(controller.record["exports"], [])
    self.assertTrue(controller.record["summaries"].named("flush"))

  def test_fewer_bad_steps_than_the_limit_go_on(self):
    def flaky(engine, stop):
      engine.bad = 2 if stop == 10 else 0

    engine = StubEngine(on_chunk=flaky)
    make_controller(engine).run()
    self.assertEqual(engine.global_step, 20)

  def test_preemption_checkpoints_at_the_chunk_end_and_stops(self):
    def preempt(engine, stop):
      if stop == 5:
        controller.watcher.signal = signal.SIGTERM

    engine = StubEngine(on_chunk=preempt)
    controller = make_controller(engine)
    with self.assertRaisesRegex(Preempted, "preempted by SIGTERM at step 5: "
                                "checkpoint saved in /runs/x; run the same "
                                "command to resume"):
      controller.run()
    self.assertEqual(engine.chunks, [(0, 5)])
    self.assertEqual([a[0] for a in controller.record["checkpointer"].named(
        "save")], [5])
    self.assertEqual(controller.record["exports"], [])

  def test_preemption_inside_a_chunk_checkpoints_where_it_stopped(self):
    def preempt(engine, stop):
      if stop == 8:  # the chunk [5, 8) ends after step 6
        engine.global_step = 6
        controller.watcher.signal = signal.SIGTERM

    engine = StubEngine(on_chunk=preempt)
    controller = make_controller(engine)
    with self.assertRaisesRegex(Preempted, "preempted by SIGTERM at step 6"):
      controller.run()
    self.assertEqual([a[0] for a in controller.record["checkpointer"].named(
        "save")], [6])
    train = [a for a in controller.record["summaries"].named("scalars")
             if a[0] == "train"]
    self.assertEqual([a[2] for a in train], [5, 6])
    self.assertEqual(train[1][1]["images_per_second"], 8.0)  # 1 step, 0.5 s

  def test_preemption_before_any_step_of_a_chunk(self):
    def preempt(engine, stop):
      if stop == 8:
        engine.global_step = 5  # the loop ran no step
        controller.watcher.signal = signal.SIGTERM

    engine = StubEngine(on_chunk=preempt)
    controller = make_controller(engine)
    with self.assertRaisesRegex(Preempted, "at step 5"):
      controller.run()
    train = [a for a in controller.record["summaries"].named("scalars")
             if a[0] == "train"]
    self.assertEqual([a[2] for a in train], [5])  # no empty chunk written
    self.assertEqual([a[0] for a in controller.record["checkpointer"].named(
        "save")], [5])

  def test_preemption_at_the_last_step_leaves_test_and_export_to_resume(self):
    def preempt(engine, stop):
      if stop == 20:
        controller.watcher.signal = signal.SIGINT

    engine = StubEngine(on_chunk=preempt)
    controller = make_controller(engine)
    with self.assertRaisesRegex(Preempted, "preempted by SIGINT before the "
                                "final test and export at step 20: training "
                                "is complete"):
      controller.run()
    self.assertEqual([a[0] for a in controller.record["checkpointer"].named(
        "save")], [10, 20])
    self.assertEqual(controller.record["exports"], [])
    resumed = make_controller(StubEngine(start=20))  # the same command
    self.assertEqual(resumed.run().global_step, 20)
    self.assertEqual(resumed.record["exports"], [20])

  def test_a_signal_to_another_worker_stops_this_one_too(self):
    engine = StubEngine()
    engine.agree = lambda requested: engine.global_step >= 10
    controller = make_controller(engine)
    with self.assertRaisesRegex(Preempted, "preempted by a signal to another "
                                "worker at step 10: checkpoint saved"):
      controller.run()
    self.assertEqual([a[0] for a in controller.record["checkpointer"].named(
        "save")], [10])

  def test_profiler_window_is_traced_exactly(self):
    controller = make_controller(StubEngine(), profile=(6, 12))
    controller.run()
    self.assertEqual(controller.record["traces"],
                     [("start", 6), ("stop", 12)])

  def test_profiler_trace_kept_when_the_window_outlasts_training(self):
    controller = make_controller(StubEngine(), profile=(15, 500))
    controller.run()
    self.assertEqual(controller.record["traces"],
                     [("start", 15), ("stop", 20)])

  def test_profiler_trace_kept_on_preemption_inside_the_window(self):
    def preempt(engine, stop):
      if stop == 10:
        controller.watcher.signal = signal.SIGTERM

    controller = make_controller(StubEngine(on_chunk=preempt),
                                 profile=(6, 15))
    with self.assertRaises(Preempted):
      controller.run()
    self.assertEqual(controller.record["traces"],
                     [("start", 6), ("stop", 10)])

  def test_profiler_trace_kept_on_divergence(self):
    def diverge(engine, stop):
      engine.bad = 3 if stop >= 8 else 0

    controller = make_controller(StubEngine(on_chunk=diverge),
                                 profile=(6, 15))
    with self.assertRaises(TrainingError):
      controller.run()
    self.assertEqual(controller.record["traces"], [("start", 6),
                                                   ("stop", 8)])

  def test_announce(self):
    controller = make_controller(StubEngine(start=12))
    controller.announce(12, 2, 28)
    self.assertEqual(controller.record["lines"], [
        "resuming at step 12/20: 2 replica(s), global batch 4, 8 steps per "
        "epoch, image size 28"])


def rising_then_flat(step):
  """Validation accuracy that improves up to step 8 and then stalls."""
  return {4: 0.5}.get(step, 0.6)


def drops(lines):
  return [int(line.split()[5]) for line in lines
          if line.startswith("learning rate x")]


class PlateauTest(tf.test.TestCase):
  """The plateau schedule's drops and early stopping, decided after each
  validation from the checkpointed record (train/loop/state.Plateau)."""

  def run_plateau(self, engine, plateau, total=40):
    controller = make_controller(engine, total=total, eval_every=4,
                                 plateau=plateau)
    return controller, controller.run()

  def test_the_rate_drops_after_each_patience_of_stalls(self):
    plateau = Plateau(patience=2, factor=0.1)
    controller, result = self.run_plateau(
        StubEngine(accuracy=rising_then_flat), plateau)
    lines = controller.record["lines"]
    # Best at 8; stalls at 12, 16, ..., 40: a drop every second one.
    self.assertEqual(drops(lines), [16, 24, 32, 40])
    self.assertIn("learning rate x0.1 at step 16 (now 0.1 of the "
                  "schedule's): 2 validations without an accuracy above "
                  "0.6000 (step 8)", lines)
    self.assertAllClose(plateau.rate_scale.numpy(), 1e-4)
    self.assertEqual(result.global_step, 40)  # no early stopping

  def test_a_tie_is_no_improvement(self):
    plateau = Plateau(patience=1)
    controller, _ = self.run_plateau(StubEngine(), plateau, total=12)
    # 0.75 at 4, 8 and 12: only the first improves.
    self.assertEqual(drops(controller.record["lines"]), [8, 12])
    self.assertEqual(int(plateau.best_step.numpy()), 4)

  def test_early_stopping_ends_as_a_run_ends(self):
    engine = StubEngine(accuracy=rising_then_flat)
    controller, result = self.run_plateau(engine, Plateau(stop_after=2))
    record = controller.record
    # Stalls at 12 and 16: training ends at 16 with a checkpoint, the test
    # and the export, as at the last step.
    self.assertEqual(engine.chunks[-1], (15, 1))
    self.assertEqual(engine.evaluated[-2:], [(16, 4), (16, 6)])
    self.assertEqual([a[0] for a in record["checkpointer"].named("save")],
                     [10, 16])
    self.assertEqual(record["exports"], [16])
    self.assertEqual(result.global_step, 16)
    self.assertEqual(result.test_accuracy, 0.75)
    self.assertIn("early stopping at step 16: 2 validations without an "
                  "accuracy above 0.6000 (step 8)", record["lines"])
    self.assertEqual(drops(record["lines"]), [])  # patience 0: no drops

  def test_a_run_resumed_after_early_stopping_only_tests_and_exports(self):
    plateau = Plateau(stop_after=2)
    self.run_plateau(StubEngine(accuracy=rising_then_flat), plateau)
    engine = StubEngine(start=16)  # restored: the same record
    controller, result = self.run_plateau(engine, plateau)
    self.assertEqual(engine.chunks, [])
    self.assertEqual(engine.evaluated, [(16, 6)])
    self.assertEqual(controller.record["exports"], [16])
    self.assertEqual(result.global_step, 16)
    self.assertIn("early stopping at step 16", controller.record["lines"][0])

  def test_no_early_stopping_line_when_the_last_step_stalls_too(self):
    controller, result = self.run_plateau(
        StubEngine(accuracy=rising_then_flat), Plateau(stop_after=2),
        total=16)
    self.assertEqual(result.global_step, 16)
    self.assertFalse([line for line in controller.record["lines"]
                      if line.startswith("early stopping")])

  def test_a_validation_a_signal_interrupted_counts_once_after_resume(self):
    def stop_during_validation_of_12(engine, step):
      if step == 12:  # the signal lands while step 12 is validated
        evaluate = engine.evaluate
        engine.evaluate = lambda split, purpose="validation": (
            setattr(interrupted.watcher, "signal", signal.SIGTERM)
            or evaluate(split, purpose))

    straight = Plateau(patience=1, stop_after=3)
    _, uninterrupted = self.run_plateau(
        StubEngine(accuracy=rising_then_flat), straight)
    plateau = Plateau(patience=1, stop_after=3)
    interrupted = make_controller(
        StubEngine(accuracy=rising_then_flat,
                   on_chunk=stop_during_validation_of_12),
        total=40, eval_every=4, plateau=plateau)
    with self.assertRaisesRegex(Preempted, "at step 12"):
      interrupted.run()
    self.assertEqual(int(plateau.validated.numpy()), 8)  # 12 not counted
    # The same command: the record as the checkpoint at 12 holds it.
    engine = StubEngine(start=12, accuracy=rising_then_flat)
    controller, resumed = self.run_plateau(engine, plateau)
    self.assertEqual(engine.evaluated[0], (12, 4))
    self.assertEqual(resumed.global_step, uninterrupted.global_step)
    self.assertEqual(resumed.global_step, 20)
    self.assertEqual(float(plateau.rate_scale.numpy()),
                     float(straight.rate_scale.numpy()))
    self.assertEqual(drops(controller.record["lines"]), [12, 16, 20])


class ProgressTest(tf.test.TestCase):
  """The controller through a Progress that draws a bar on a terminal."""

  def terminal_controller(self, engine):
    terminal = io.StringIO()
    display = Progress(lambda line: terminal.write(line + "\n"), terminal)
    return make_controller(engine, report=display), terminal

  def test_a_bar_per_chunk_and_messages_on_lines_of_their_own(self):
    controller, terminal = self.terminal_controller(StubEngine())
    controller.run()
    text = terminal.getvalue()
    self.assertEqual(text.count("\r"), 6)  # one draw per chunk
    self.assertNotIn("step 5/20", text)  # no plain progress lines
    self.assertIn("\r 5/20 [===>...........] 40 img/s", text)
    # The bar's line ends before each message.
    self.assertRegex(text, r"\r 8/20 \[[^\n]*\neval at step 8: ")
    self.assertTrue(text.endswith("step 20)\n"))

  def test_an_error_starts_on_a_line_of_its_own(self):
    def preempt(engine, stop):
      if stop == 5:
        controller.watcher.signal = signal.SIGTERM

    controller, terminal = self.terminal_controller(
        StubEngine(on_chunk=preempt))
    with self.assertRaises(Preempted):
      controller.run()
    self.assertRegex(terminal.getvalue(), r"^\r 5/20 \[.*\n$")

if __name__ == "__main__":
  tf.test.main()
