"""Loading a model: where model and label files may come from and their checksums (`trust`), the bundled models
(`bundled`), label files (`labels`) and `model.Model`, which opens a file or a server model on a runtime
(`core.runtimes`) with its labels and metadata. Knows nothing of images or vision."""
