"""bench/onednn_profile.py: oneDNN's verbose lines summed by kind, per step."""

import tensorflow as tf

from bench import onednn_profile
from core.optim import precision
from tests import helpers

_CONV = ("onednn_verbose,v1,primitive,exec,cpu,convolution,{impl},{prop},"
         "src:bf16::blocked:acdb::f0 wei:bf16:a:blocked:AcdB32a2b::f0 "
         "dst:bf16::blocked:acdb::f0,attr-scratchpad:user,"
         "alg:convolution_direct,mb8_ic16oc32_ih32oh32kh3sh1dh0ph1_iw32ow32"
         "kw3sw1dw0pw1,{ms}")
# One training step's worth of lines as this TF's oneDNN prints them, with
# the kinds of line that do not count (creation, info, TF's own logging).
LOG = [
    "onednn_verbose,v1,info,oneDNN v3.7.0 (commit unknown)",
    "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,"
    "brg_conv_fwd:avx10_1_512_amx,forward_training,src:bf16,,,mb8,0.5",
    _CONV.format(impl="brg_conv_fwd:avx10_1_512_amx", prop="forward_training",
                 ms="2.0"),
    _CONV.format(impl="brg_conv_fwd:avx10_1_512_amx",
                 prop="forward_inference", ms="1.0"),
    _CONV.format(impl="brg_conv_bwd:avx10_1_512_amx+brg_conv_fwd:"
                 "avx10_1_512_amx", prop="backward_data", ms="4.0"),
    _CONV.format(impl="brgconv_bwd_w:avx10_1_512_amx",
                 prop="backward_weights", ms="8.0"),
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16::"
    "blocked:cdba::f0 dst:bf16::blocked:AcdB32a2b::f0,,,32x16x3x3,0.5",
    "onednn_verbose,v1,primitive,exec,cpu,pooling,jit:avx512_core_bf16,"
    "forward_training,src:bf16 dst:bf16,,alg:pooling_max,mb8ic32,1.5",
    "onednn_verbose,v1,primitive,exec,cpu,pooling,jit:avx512_core_bf16,"
    "backward_data,src:bf16 dst:bf16,,alg:pooling_max,mb8ic32,0.5",
    "onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx10_1_512_amx,"
    "undef,src:bf16 wei:bf16 dst:bf16,,,64x1024:1024x10,3.0",
    "onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32 wei_f32 "
    "dst_f32,,,8x10:10x2048,1.0",
    "onednn_verbose,v1,primitive,exec,cpu,eltwise,jit:avx512_core,"
    "forward_training,data:f32,,alg:eltwise_relu,8x32,0.25",
    "I0000 00:00:1796529519.953196 12694 port.cc:153] oneDNN custom "
    "operations are on.",
]


class SummariseTest(tf.test.TestCase):

  def test_sums_exec_lines_by_kind_and_direction_per_step(self):
    profile = onednn_profile.summarise(LOG + LOG, steps=2)
    self.assertEqual(profile.ms, {
        "convolution fwd": 3.0, "convolution bwd_data": 4.0,
        "convolution bwd_weights": 8.0, "reorder": 0.5, "pooling": 2.0,
        "matmul": 4.0, "other": 0.25})
    self.assertEqual(profile.calls["convolution fwd"], 2)
    self.assertEqual(profile.calls["matmul"], 2)
    self.assertEqual(sum(profile.calls.values()), 10)

  def test_counts_only_the_lines_between_the_markers(self):
    mark = onednn_profile.MARK
    profile = onednn_profile.summarise(
        LOG + [mark] + LOG[2:3] + [mark + " 12 ms/step"] + LOG)
    self.assertEqual(profile.ms, {"convolution fwd": 2.0})

  def test_reads_older_lines_without_the_version_fields(self):
    line = ("onednn_verbose,exec,cpu,convolution,jit:avx512_core,"
            "backward_weights,src_f32::blocked:abcd:f0,,alg:convolution_"
            "direct,mb8_ic3oc64,7.5")
    profile = onednn_profile.summarise([line])
    self.assertEqual(profile.ms, {"convolution bwd_weights": 7.5})
    self.assertEmpty(profile.amx)

  def test_names_the_amx_kernels_slowest_first(self):
    profile = onednn_profile.summarise(LOG)
    self.assertEqual(profile.amx[0],
                     "convolution brgconv_bwd_w:avx10_1_512_amx")
    self.assertLen(profile.amx, 4)  # fwd, bwd_data, bwd_w, matmul
    self.assertNotIn("reorder jit:uni", profile.amx)

  def test_the_fused_inner_product_is_a_row_of_its_own(self):
    # TF's fused MatMul + BiasAdd + Relu: its bfloat16 gemm ran without
    # AMX, 17 % of a step, hidden while it was counted as matmul.
    line = ("onednn_verbose,v1,primitive,exec,cpu,inner_product,"
            "x64:gemm:jit,forward_training,src:bf16 wei:bf16 dst:bf16,"
            "attr-post-ops:eltwise_relu,,mb64ic832oc256,7.5")
    profile = onednn_profile.summarise(LOG + [line])
    self.assertEqual(profile.ms["inner_product"], 7.5)
    self.assertEqual(profile.ms["matmul"], 4.0)
    self.assertNotIn("inner_product x64:gemm:jit", profile.amx)

  def test_the_table_has_every_kind_and_the_total(self):
    rows = onednn_profile.table(onednn_profile.summarise(LOG)).splitlines()
    self.assertLen(rows, 2 + len(onednn_profile.KINDS) + 1)
    self.assertEqual(rows[2], "| convolution fwd | 3.0 | 14% | 2 |")
    self.assertEqual(rows[-1], "| all | 21.8 | 100% | 10 |")


class MeasureTest(tf.test.TestCase):

  def test_profiles_a_real_training_step(self):
    # This TensorFlow's oneDNN, on a small image: the format the parser
    # reads is the one it prints.
    done = helpers.python("-m", "bench.onednn_profile", "--image_size=32",
                          "--batch=2", "--steps=1")
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:]
            for line in done.stdout.splitlines() if line.startswith("| ")}
    for kind in ("convolution fwd", "convolution bwd_weights", "all"):
      self.assertGreater(float(rows[kind][0]), 0, kind)
    # In the precision oneDNN runs here: bfloat16 only on a matrix unit (a
    # CPU without one ran its bfloat16 convolutions elsewhere: none above).
    self.assertEqual(done.stdout.splitlines()[0], "precision: " + (
        "mixed_bfloat16" if "amx_bf16" in precision.cpu_flags()
        else "float32"))
    self.assertStartsWith(done.stdout.splitlines()[-1], "AMX kernels: ")
