"""The ROS-free core, in layers; each imports only the ones listed before it (test_architecture checks it):

- `metadata`, `tensors`, `text`: the vocabulary every layer shares (tensor specs, model metadata, wire tensors,
  text typed by users read as values);
- `runtimes`: a model file on onnxruntime, LiteRT or OpenVINO, or a model on an inference server;
- `loading`: which files may be read (trust), the bundled models, labels, and `Model`;
- `reading`: a model read as a detector or classifier (preprocessing, decoders, masks, `VisionModel`);
- `frames`: camera frames through the pipeline (images, pairing, 3D objects, tracking, drawing, health), and
  `scenes`: a real RGB-D sample for bring-up without a camera;
- `settings`: the parameter table of both nodes, the configuration objects made from it, the files it writes.

`ml_model_service.ros` puts the core on ROS; `ml_model_service.cli` runs it from a shell.
"""
