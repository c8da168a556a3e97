"""The weight sets and the purposes the model holds them for
(train/loop/weights.py); their effect on evaluation is in evaluator_test."""

import tensorflow as tf


class PurposeTest(tf.test.TestCase):

  def test_an_unknown_purpose_is_refused_not_the_trained_weights(self):
    from train.loop import weights  # pylint: disable=g-import-not-at-top
    sets = weights.WeightSets()
    for purpose in (weights.VALIDATION, weights.FINAL):
      with sets(purpose):
        pass
    with self.assertRaisesRegex(ValueError, "received purpose='Final'"):
      sets("Final")


if __name__ == "__main__":
  tf.test.main()
