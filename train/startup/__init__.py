"""What every command does before its work: the option tables turned into
flags, one-line errors with exit codes, the CPU kernels chosen and
TensorFlow imported quietly."""
