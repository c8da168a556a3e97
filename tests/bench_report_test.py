"""bench/report.py: the ratios, gaps and shares of bench.run's table."""

import tensorflow as tf

from bench import onednn_profile
from bench import report

_BASE = {"setting": "224", "precision": "mixed_bfloat16", "replicas": 1,
         "default_steps_per_loop": 20, "image_size": 224, "stem": "paper",
         "norm": "none", "global_batch_size": 64}


def _command(steps_per_loop, seconds_per_step, **more):
  return dict(_BASE, contender="command", steps_per_loop=steps_per_loop,
              seconds_per_step=seconds_per_step, runs=[20, 40],
              run_seconds=[60.0, 60.0 + 20 * seconds_per_step],
              between_lines=0.99, **more)


# 64 images a step: the command at 1.0 s a step is 64 img/s; Keras at 1.6 s
# is 40 img/s; the loop at 0.95 s.
ROWS = [
    _command(2, 1.1), _command(20, 1.0),
    dict(_BASE, contender="loop", seconds_per_step=0.95),
    dict(_BASE, contender="keras_fit", seconds_per_step=1.6),
    dict(_BASE, contender="torch_compiled", error="no module named torch"),
]
FACTS = {"gflops_per_image": {"224": 9.0},
         "matmul": {"float32": 300.0, "mixed_bfloat16": 1000.0},
         "cpu": "a CPU", "versions": {"tensorflow": "2.21.0"},
         "elapsed": 600.0, "load": (0.1, 2.0), "profile_size": (8, 2),
         "profile": onednn_profile.summarise([
             "onednn_verbose,v1,primitive,exec,cpu,convolution,"
             "brg_conv_fwd:avx10_1_512_amx,forward_training,src,,,mb8,5.0"])}


class ReportTest(tf.test.TestCase):

  def test_share_of_the_matmul_rate(self):
    self.assertAlmostEqual(report.share(64, 9.0, 1000.0), 0.576)

  def test_the_command_at_its_own_steps_per_loop_is_the_reference(self):
    self.assertEqual(report.find(ROWS, "224", "mixed_bfloat16", "command"),
                     ROWS[1])
    self.assertIsNone(report.find(ROWS, "224", "float32", "command"))
    self.assertIsNone(report.find(ROWS, "224", "mixed_bfloat16",
                                  "torch_compiled"))  # it failed

  def test_without_its_own_the_command_at_most_steps_a_call(self):
    rows = [_command(2, 1.1), _command(10, 1.05), _command(5, 1.2)]
    self.assertEqual(report.find(rows, "224", "mixed_bfloat16",
                                 "command")["steps_per_loop"], 10)

  def test_rows_give_the_ratio_the_gap_and_the_share(self):
    table = report.render(ROWS, FACTS).splitlines()
    cells = lambda what: next(
        line.split(" | ") for line in table if what in line)
    # img/s, ms/step, command ÷ it, vs the loop, share.
    self.assertEqual(cells("--steps_per_loop=20")[3:8],
                     ["64.0", "1000", "", "+5.3%", "58%"])
    self.assertEqual(cells("--steps_per_loop=2")[3:8],
                     ["58.2", "1100", "1.10x", "+15.8%", "52%"])
    self.assertEqual(cells("Keras")[3:8], ["40.0", "1600", "1.60x", "",
                                           "36%"])
    self.assertEqual(cells("PyTorch")[3], "failed: no module named torch")
    # The setting and precision are named once, on their first row.
    self.assertStartsWith(cells("--steps_per_loop=2")[0],
                          "| 224x224, paper stem")
    self.assertEqual([c.strip("| ") for c in cells("Keras")[:2]], ["", ""])

  def test_the_targets_of_issue_47(self):
    table = report.render(ROWS, FACTS)
    self.assertIn("- 224x224 mixed_bfloat16: the command at 1.60x Keras "
                  "`fit` (target >= 1.5x), at 58% of the bfloat16 matmul "
                  "rate (target >= 60 %).", table)
    self.assertIn("- 224x224 mixed_bfloat16, --steps_per_loop=2: the "
                  "command's step +15.8% against its compiled loop's",
                  table)
    self.assertNotIn("224x224 float32", table)  # not measured

  def test_pytorch_rows_say_how_it_ran(self):
    base = dict(_BASE, contender="torch_compiled", seconds_per_step=2.0)
    compiled = report.line(dict(base, mode="compiled"), ROWS, FACTS, False)
    self.assertIn("| PyTorch, channels-last, autocast bfloat16, "
                  "`torch.compile`d, 1 process |", compiled)
    eager = report.line(dict(base, precision="float32", mode="eager "
                             "(torch.compile failed: no cc | none)"),
                        ROWS, FACTS, False)
    self.assertIn("| PyTorch, channels-last, eager (torch.compile failed: "
                  "no cc / none), 1 process |", eager)

  def test_names_the_amx_kernels_and_shows_the_profile(self):
    table = report.render(ROWS, FACTS)
    self.assertIn("oneDNN ran AMX kernels: yes (convolution "
                  "brg_conv_fwd:avx10_1_512_amx).", table)
    self.assertIn("| convolution fwd | 5.0 | 100% | 1 |", table)
    no_profile = dict(FACTS, profile=RuntimeError("it failed"))
    self.assertIn("oneDNN ran AMX kernels: unknown (it failed).",
                  report.render(ROWS, no_profile))
