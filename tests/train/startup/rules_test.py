"""The rules a run's configuration obeys (train/startup/rules.py), through
RunConfig as the command line builds it: each refusal is one line naming the
field and its rule, each warning one line."""

import tensorflow as tf

from core.runtime.errors import InputError
from train.startup.config import RunConfig


class RulesTest(tf.test.TestCase):

  def test_variant_implies_batch_norm_needs_the_paper_stem(self):
    self.assertNotIn("variant", RunConfig(model_dir="m").fingerprint)
    torch = RunConfig(model_dir="m", variant="torchvision")
    self.assertEqual((torch.norm, torch.fingerprint["variant"],
                      torch.fingerprint["norm"]),
                     ("batch", "torchvision", "batch"))
    with self.assertRaisesRegex(InputError, r"`stem` must be paper with "
                                r"--variant=slim .*received stem='small'"):
      RunConfig(model_dir="m", variant="slim", stem="small")
    with self.assertRaisesRegex(InputError, "`variant` must be one of "
                                "paper, torchvision, slim"):
      RunConfig(model_dir="m", variant="keras")

  def test_blocks_are_checked_as_the_model_checks_them(self):
    from layers import googlenet  # pylint: disable=g-import-not-at-top
    self.assertNotIn("blocks", RunConfig(model_dir="m").fingerprint)
    small = RunConfig(model_dir="m", blocks=("4a", "4d"))
    self.assertEqual(small.fingerprint["blocks"], ("4a", "4d"))
    for bad in (("4d", "4a"), ("3a", "4a"), ("4a", "4d", "6a"),
                ("4a", "4a", "4d")):
      with self.assertRaisesRegex(InputError, r"`blocks` must be inception "
                                  r"blocks of 3a,3b,.*keeping 4a and 4d"):
        RunConfig(model_dir="m", blocks=bad)
      with self.assertRaisesRegex(ValueError, "`blocks` must be inception"):
        googlenet.check_blocks(bad)
    self.assertEqual(googlenet.check_blocks(["4a", "4d", "5b"]),
                     ("4a", "4d", "5b"))

  def test_mirroring_without_flips_is_warned_about(self):
    self.assertEqual(RunConfig(model_dir="m").warnings, ())
    self.assertEqual(RunConfig(model_dir="m", test_mirror=True,
                               augment=("crop", "flip")).warnings, ())
    for augment in ((), ("crop", "erase")):
      (line,) = RunConfig(model_dir="m", test_mirror=True,
                          augment=augment).warnings
      self.assertIn("--augment has no flip", line)

  def test_crop_padding_without_crop_is_warned_about(self):
    self.assertEqual(RunConfig(model_dir="m", crop_padding=2,
                               augment=("crop",)).warnings, ())
    (line,) = RunConfig(model_dir="m", crop_padding=2,
                        augment=("flip",)).warnings
    self.assertIn("--augment has no crop", line)

  def test_crop_padding_on_files_is_warned_about(self):
    for dataset in ("folder", "tfrecord"):
      (line,) = RunConfig(model_dir="m", crop_padding=2, augment=("crop",),
                          dataset=dataset, data_dir="d").warnings
      self.assertIn(f"--dataset={dataset} reads files", line)
    self.assertEqual(RunConfig(model_dir="m", crop_padding=2,
                               augment=("crop",), dataset="mnist").warnings,
                     ())

  def test_errors(self):
    cases = [
        (dict(global_batch_size=0), "`global_batch_size` must be a positive "
         "integer; received global_batch_size=0"),
        (dict(optimizer="rmsprop"), "`optimizer` must be one of adam, sgd"),
        (dict(keep_checkpoints=1), "`keep_checkpoints` must be at least 2"),
        (dict(learning_rate=float("nan")), "`learning_rate` must be a "
         "positive finite number"),
        (dict(aux_loss_weights=(0.3,)), "`aux_loss_weights` must be two"),
        (dict(crop_padding=-1), "`crop_padding` must be a non-negative "
         "number; received crop_padding=-1"),
        (dict(profile_steps=(5, 2)), "`profile_steps` must be empty or two"),
        (dict(train_steps=0), "`train_steps` must be a positive integer"),
        (dict(strategy="tpu"), "`strategy` must be one of mirrored, "
         "one_device, default, multi_worker; received strategy='tpu'"),
        (dict(dataset="cifar"), "`dataset` must be one of mnist, "
         "fashion_mnist, synthetic"),
        (dict(mixed_precision="int8"), "`mixed_precision` must be one of"),
        (dict(epochs=True), "`epochs` must be a positive integer"),
        (dict(label_smoothing=1.0), r"`label_smoothing` must be in \[0, 1\); "
         "received label_smoothing=1.0"),
        (dict(ema_decay=-0.1), r"`ema_decay` must be in \[0, 1\)"),
        (dict(weight_decay=-1.0), "`weight_decay` must be a non-negative "
         "finite number"),
        (dict(clip_norm=float("inf")), "`clip_norm` must be a non-negative "
         "finite number"),
        (dict(export="first"), "`export` must be one of last, best, none"),
        (dict(stem="large"), "`stem` must be one of paper, medium, small"),
        (dict(norm="group"), "`norm` must be one of none, batch"),
        (dict(norm_group_size=0), "`norm_group_size` must be a positive "
         "integer"),
        (dict(dataset="tfrecord", train_examples=4), r"^`train_examples` "
         r"must be 0 with --dataset=tfrecord \(records are streamed, not "
         r"indexed, so cannot be cut; write fewer shards instead\); "
         r"received train_examples=4\.$"),
        (dict(dataset="tfds:mnist", train_examples=4), r"^`train_examples` "
         r"must be 0 with --dataset=tfds:mnist \(records are streamed"),

    ]
    for kwargs, pattern in cases:
      with self.assertRaisesRegex(InputError, pattern):
        RunConfig(model_dir="m", **kwargs)
    with self.assertRaisesRegex(InputError, "`model_dir` must be a directory "
                                "path; received model_dir=''"):
      RunConfig(model_dir="")


class RecipeOptionsTest(tf.test.TestCase):
  """The modern recipe's options are refused in one line when out of range
  or when their combination cannot work (issue 49, item 8)."""

  def test_out_of_range(self):
    cases = [
        (dict(mixup_alpha=-0.2), r"`mixup_alpha` must be a non-negative"),
        (dict(cutmix_alpha=float("nan")), r"`cutmix_alpha` must be a non-n"),
        (dict(mix_switch_prob=1.5), r"`mix_switch_prob` must be in \[0, 1"),
        (dict(plateau_factor=1.0), r"`plateau_factor` must be in \(0, 1\)"),
        (dict(layer_decay=0.0), r"`layer_decay` must be in \(0, 1\]"),
        (dict(randaugment_magnitude=31), r"`randaugment_magnitude` must be "
         "an integer from 0 to 30"),
        (dict(randaugment_ops=0), r"`randaugment_ops` must be a positive"),
        (dict(accumulate_steps=0), r"`accumulate_steps` must be a positive"),
        (dict(early_stopping=-1), r"`early_stopping` must be a non-negat"),
        (dict(class_weight="inverse"), r"`class_weight` must be one of "
         "none, balanced"),
        (dict(test_crops="5"), r"`test_crops` must be one of 1, 10, 144"),
        (dict(dataset="tfds:"), r"`dataset` must be one of .*, or tfds:NAME"),
        (dict(dataset="imagenet"), r"`dataset` must be one of mnist"),
    ]
    for fields, pattern in cases:
      with self.subTest(**fields), self.assertRaisesRegex(InputError,
                                                          pattern):
        RunConfig(model_dir="m", **fields)

  def test_combinations_that_cannot_work(self):
    cases = [
        (dict(global_batch_size=64, accumulate_steps=3),
         r"`accumulate_steps` must be a divisor of --global_batch_size=64"),
        (dict(augment=("randaugment", "trivialaugment")),
         r"`augment` must be at most one of randaugment and trivialaugment"),
        (dict(lr_schedule="plateau", validation_size=0),
         r"`lr_schedule` must be constant, step or cosine with "
         r"--validation_size=0"),
        (dict(mixup_alpha=0.2, norm_group_size=3),
         r"`norm_group_size` must be even with --mixup_alpha or "
         r"--cutmix_alpha"),
        (dict(early_stopping=3, validation_size=0),
         r"`early_stopping` must be 0 with --validation_size=0"),
        (dict(class_weight="balanced", dataset="tfrecord", data_dir="d"),
         r"`class_weight` must be none with streamed records"),
        (dict(class_weight="balanced", dataset="tfds:mnist"),
         r"`class_weight` must be none with streamed records"),
    ]
    for fields, pattern in cases:
      with self.subTest(**fields), self.assertRaisesRegex(InputError,
                                                          pattern):
        RunConfig(model_dir="m", **fields)

  def test_what_can_work_is_accepted(self):
    c = RunConfig(model_dir="m", dataset="tfds:cifar10", mixup_alpha=0.2,
                  cutmix_alpha=1.0, accumulate_steps=4, layer_decay=0.8,
                  lr_schedule="plateau", early_stopping=3, test_crops="144",
                  augment=("crop", "randaugment"))
    self.assertEqual((c.dataset, c.accumulate_steps), ("tfds:cifar10", 4))
    # A folder may have a validation split of its own whatever
    # validation_size: the assembler checks once it is listed
    # (build_test's ValidationNeededTest).
    RunConfig(model_dir="m", dataset="folder", data_dir="d",
              validation_size=0, lr_schedule="plateau",
              class_weight="balanced")


if __name__ == "__main__":
  tf.test.main()
