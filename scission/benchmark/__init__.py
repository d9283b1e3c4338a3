"""Block-by-block benchmarking of Keras models (the only TensorFlow code; imported lazily)."""
