"""When the outer loop acts (train/loop/schedule.py); what it does then is
in controller_test."""

import tensorflow as tf

from train.loop.schedule import Schedule


class ScheduleTest(tf.test.TestCase):

  def test_next_stop_is_the_nearest_event(self):
    s = Schedule(total_steps=23, steps_per_loop=5, checkpoint_every=10,
                 eval_every=8)
    stops, step = [], 0
    while step < 23:
      step = s.next_stop(step)
      stops.append(step)
    self.assertEqual(stops, [5, 8, 10, 15, 16, 20, 23])
    self.assertEqual(s.next_stop(0, 3, 30), 3)  # extra boundaries count
    self.assertEqual(s.next_stop(4, 3), 5)      # ... only when ahead

  def test_events(self):
    s = Schedule(23, 5, 10, 8)
    # The last step too: the final weights are always validated.
    self.assertEqual([k for k in range(1, 24) if s.evaluates_at(k)],
                     [8, 16, 23])
    self.assertEqual([k for k in range(1, 24) if s.checkpoints_at(k)],
                     [10, 20, 23])


if __name__ == "__main__":
  tf.test.main()
