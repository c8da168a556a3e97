"""--mixed_precision=auto: bfloat16 where a matrix unit runs it (AMX, GPUs
with bfloat16 tensor cores, faked here as device details), float32
elsewhere, and a resume keeps the run's own."""

import os
import tempfile
import unittest

from core.optim import precision

AMX_XEON = ("fpu vme sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile "
            "amx_int8")
EPYC = "fpu vme sse2 avx2 fma"


def cpuinfo(flags: str) -> str:
  path = os.path.join(tempfile.mkdtemp(), "cpuinfo")
  with open(path, "w") as f:
    f.write("processor\t: 0\nmodel name\t: Test CPU\n"
            f"flags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
  return path


class PrecisionTest(unittest.TestCase):

  def test_cpu_flags_read_from_cpuinfo(self):
    flags = precision.cpu_flags(cpuinfo(AMX_XEON))
    self.assertIn("amx_bf16", flags)
    self.assertNotIn("amx_bf16", precision.cpu_flags(cpuinfo(EPYC)))
    self.assertEqual(precision.cpu_flags("/nonexistent/cpuinfo"),
                     frozenset())

  def test_the_kernels_own_cpuinfo_is_read_with_tensorflow_loaded(self):
    # /proc files report size 0: TensorFlow's file reader returned nothing,
    # and auto chose float32 on an AMX Xeon.
    if not os.path.exists("/proc/cpuinfo"):
      self.skipTest("no /proc/cpuinfo here")
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    with open("/proc/cpuinfo") as f:
      flags = next((line.split(":", 1)[1].split() for line in f
                    if line.split(":")[0].strip() == "flags"), [])
    self.assertEqual(precision.cpu_flags(), frozenset(flags))
    self.assertTrue(flags or os.uname().machine != "x86_64")

  def test_amx_cpu_gets_bfloat16_others_float32(self):
    amx = precision.fastest([], precision.cpu_flags(cpuinfo(AMX_XEON)))
    self.assertEqual(amx.chosen, "mixed_bfloat16")
    self.assertIn("AMX", amx.why)
    # AVX-512 with bfloat16 dot products but no AMX: converted, not faster.
    self.assertEqual(precision.fastest(
        [], frozenset({"avx512f", "avx512_bf16"})).chosen, "float32")
    self.assertEqual(precision.fastest(
        [], precision.cpu_flags(cpuinfo(EPYC))).chosen, "float32")
    # TensorFlow's own kernels (--deterministic) do not use AMX.
    self.assertEqual(precision.fastest(
        [], frozenset({"amx_bf16"}), onednn=False).chosen, "float32")

  def test_gpus_decide_over_the_cpu_and_the_oldest_gpu_counts(self):
    a100 = {"device_name": "A100", "compute_capability": (8, 0)}
    v100 = {"device_name": "V100", "compute_capability": (7, 0)}
    cpu = frozenset({"amx_bf16"})
    self.assertEqual(precision.fastest([a100, a100], frozenset()).chosen,
                     "mixed_bfloat16")
    mixed = precision.fastest([a100, v100], cpu)
    self.assertEqual(mixed.chosen, "float32")
    self.assertIn("7.0", mixed.why)
    self.assertEqual(precision.fastest([{}], cpu).chosen, "float32")

  def test_explicit_choice_and_resume_win_over_detection(self):
    cpu = frozenset({"amx_bf16"})
    self.assertEqual(precision.resolve("float32", None, [], cpu).chosen,
                     "float32")
    # A run begun in float32 on a machine without AMX resumes in float32.
    resumed = precision.resolve("auto", "float32", [], cpu)
    self.assertEqual(resumed, precision.Choice(
        "auto", "float32", "the run's own, from its manifest"))
    self.assertEqual(precision.resolve("auto", None, [], cpu).chosen,
                     "mixed_bfloat16")


if __name__ == "__main__":
  unittest.main()
