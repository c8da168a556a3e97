"""Data: where images come from (IDX files, image folders, TFRecord shards,
a synthetic set) and how they become batches (tf.data pipelines, decoding,
augmentation, preprocessing). `types` holds the data types without
TensorFlow, so the command line can name them before TensorFlow loads."""
