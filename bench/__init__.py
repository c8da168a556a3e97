"""Benchmarks: the engine side by side with Keras `fit` and PyTorch eager."""
