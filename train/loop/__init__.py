"""The training loop, in Orbit's split: pure per-replica steps, compiled
inner loops, the engine that holds the variables, and the controller (the
outer loop) with its summaries, preemption watcher and profiler window."""
