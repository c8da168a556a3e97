"""Assembly: the frozen config (the option table), the one assembler that
turns it into parts, the run's manifest and its lock on model_dir."""
