"""Runtimes: a model file (onnxruntime, LiteRT, OpenVINO) or a model on an inference server behind one
interface (`backend.Backend`), opened by `registry.open_backend`. Below everything that loads or reads a model;
imports only the shared vocabulary (`core.metadata`, `core.tensors`)."""
