"""Block-by-block benchmarking of Keras models: the only TensorFlow code in scission (imported lazily).

- ``graph``: split analysis (valid cuts where one tensor crosses, and the blocks between them).
- ``timing``: cold call, then R alternating whole-model calls and chained block passes.
- ``models``: the 18 Keras applications, ``.keras`` files and SavedModel directories, local weights.
- ``inputs``: a real image preprocessed the model's way, or a deterministic synthetic one.
- ``worker``: one model in one process, written as a profile; ``session``: one child process per model.
- ``host``: resource metadata (CPU, limits, versions); ``plot``: per-block latency / output size bars.
- ``cli``: the ``scission benchmark`` sub-command.
"""
