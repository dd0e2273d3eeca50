"""Reading a model as a vision model: images made its input tensors (`preprocess`), its own metadata
(`hints`), its outputs decoded by layout (`decoders`), instance masks (`masks`), and `vision.VisionModel`, which
finds how to read a model from its metadata and a trial run and gives named, filtered detections or
classifications. Takes any runner with `metadata` and `infer` (a `loading.model.Model` or a remote one)."""
