"""The evaluator: main-head results over a whole split, in compiled chunks
(Orbit's evaluator), and the sample of misclassified images TensorBoard
shows beside them."""

from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from core.data import pipeline
from train.loop import compiled
from train.loop.feed import Feed, naming_bad_images
from train.loop.preemption import StopVote
from train.loop.step import EvalStep
from train.loop.weights import FINAL, VALIDATION, WeightSets

EVAL_METRICS = ("loss/main", "accuracy/main", "accuracy/top5")
# The misclassified-images grid looks at the first GALLERY_SAMPLE examples of
# the validation split (the same ones at every evaluation).
GALLERY_SAMPLE = 256


class Evaluation(NamedTuple):
  """Main-head results over a whole split."""
  values: Dict[str, float]   # EVAL_METRICS, as means over the examples
  confusion: np.ndarray      # [classes, classes] counts, rows = true labels
  examples: int
  skipped_images: int = 0    # unreadable images left out (--skip_bad_images)


class Evaluator:
  """The evaluation side of a run.

  Args:
    step: The evaluation step (it holds the model and its sums).
    feed: How splits become batches.
    vote: The stop flags the compiled loop checks before every step.
    weights: The weight sets swapped in for each purpose.
    final_step: The final test's step where it scores other views than
      validation (multi-crop testing: --test_crops); None: `step`.
  """

  def __init__(self, step: EvalStep, feed: Feed, vote: StopVote,
               weights: WeightSets, final_step: Optional[EvalStep] = None):
    self.step, self.feed, self.weights = step, feed, weights
    self.loop = compiled.CompiledLoop(feed.strategy, step, step.sums, vote)
    self._final_loop = (compiled.CompiledLoop(
        feed.strategy, final_step, final_step.sums, vote)
                        if final_step else self.loop)
    # Cross-replica, on this host's default device: no collective. No
    # AutoGraph: the model holds no Python control flow on tensors.
    self._predict = tf.function(lambda images: tf.argmax(
        step.logits(images), axis=1, output_type=tf.int32), autograph=False)

  def evaluate(self, split, purpose: str = VALIDATION) -> Evaluation:
    """Main-head results over every example of `split` (padding and
    skipped images ignored), with the weights `purpose` uses
    (train/loop/weights.py) and, for the final test, its views.

    Raises:
      DataError: An image cannot be read or decoded (and skipping is off).
    """
    dataset = self.feed.distributed(split, training=False)
    steps = pipeline.eval_steps(split.num_examples,
                                self.feed.batch.global_batch_size)
    loop = self._final_loop if purpose == FINAL else self.loop
    with naming_bad_images(), self.weights(purpose):
      sums = loop.run(iter(dataset), steps)
    return Evaluation(compiled.means(sums, EVAL_METRICS),
                      sums["confusion"], int(sums["examples"]),
                      int(sums["bad_images"]))

  def misclassified(self, split, limit: int = 16) -> Tuple[
      np.ndarray, np.ndarray, np.ndarray]:
    """Up to `limit` of the first GALLERY_SAMPLE examples of `split` that
    the model gets wrong with the validation weights, read as evaluation
    reads them: (uint8 images, true labels, predicted labels)."""
    with naming_bad_images(), self.weights(VALIDATION):
      batch = self.feed.first(split, min(GALLERY_SAMPLE, split.num_examples))
      predicted = self._predict(batch["images"]).numpy()
    labels = batch["labels"].numpy()
    wrong = np.flatnonzero((predicted != labels)
                           & (batch["weight"].numpy() > 0))[:limit]
    return batch["images"].numpy()[wrong], labels[wrong], predicted[wrong]
