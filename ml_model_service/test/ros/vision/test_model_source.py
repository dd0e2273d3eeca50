"""ros/vision/model_source.py in this process over real DDS: the vision node's model from a file (the bundled
detector) or from a model service node (in this process too), built from the typed settings; filters applied
live, the decoder rebuilt on the loaded model, a swap on the service rebuilt at once, and a model that cannot
be had said in `state` (a service not discovered yet waited for, not an error)."""

from __future__ import annotations

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.model_service_node import ModelServiceNode
from ml_model_service.ros.remote_model import ModelChanged, RemoteModel
from ml_model_service.ros.vision.model_source import ModelSource
from ml_model_service_dev.harness.photos import photo

NS = "/model_source_test"


@pytest.fixture
def node(spinner):
    sources: list[ModelSource] = []
    with spinner.spun(Node("vision_under_test", namespace=NS, context=spinner.node.context)) as made:
        yield made, sources
        for source in sources:
            source.close()


def test_a_model_file_filters_applied_live_and_the_decoder_rebuilt_on_the_loaded_model(node):
    node, sources = node
    s = VisionSettings.of({"model_path": "ssd_mobilenet_v2_coco", "backend": "onnx", "confidence_threshold": 0.3})
    ready: list = []
    source = ModelSource(node, s, ready.append)
    sources.append(source)
    assert source.remote is None and source.where == "model" and source.vision is None
    vision = source.current(s)
    assert vision is not None and ready == [vision] and source.current(s) is vision  # built once
    assert source.ok and source.state.startswith("detector ready (") and "80 labels" in source.state
    assert vision.config.filters.confidence_threshold == 0.3
    source.set_filters(s.updated({"confidence_threshold": 0.8, "classes": ["cat"]}))
    assert (vision.config.filters.confidence_threshold, vision.config.filters.classes) == (0.8, ["cat"])
    rebuilt = source.rebuild_decoder(s.updated({"resize_mode": "letterbox"}))
    assert rebuilt is not vision and rebuilt.runner is vision.runner and rebuilt.config.resize_mode == "letterbox"
    assert source.vision is vision  # installed only when the node says so
    source.install(rebuilt)
    assert source.vision is rebuilt and ready == [vision, rebuilt]


def test_a_model_file_that_cannot_load_is_the_state_and_the_node_goes_on(node):
    node, sources = node
    s = VisionSettings.of({"model_path": "/no/such/model.onnx"})
    source = ModelSource(node, s, lambda _v: pytest.fail("no model to be ready"))
    sources.append(source)
    assert source.current(s) is None and not source.ok and not source.waiting
    assert source.state.startswith("model unavailable: ") and "/no/such/model.onnx" in source.state


def test_a_model_service_its_swap_rebuilt_at_once_and_one_not_discovered_yet_waited_for(spinner, node):
    node, sources = node
    service = ModelServiceNode(
        namespace=NS,
        context=spinner.node.context,
        parameter_overrides=[
            Parameter("model_path", value="ssd_mobilenet_v2_coco"),
            Parameter("backend", value="onnx"),
        ],
    )
    spinner.executor.add_node(service)
    try:
        s = VisionSettings.of({"model_service": "ml_model_service", "service_timeout": 5.0})  # relative: resolved
        source = ModelSource(node, s, lambda _v: None)
        sources.append(source)
        assert source.where == f"model service {NS}/ml_model_service"
        vision = source.current(s)
        assert isinstance(vision.runner, RemoteModel) and vision.role == "detector" and source.ok
        assert "cat" in {d.class_name for d in vision.detect(photo("chelsea"))}  # labels from the metadata
        assert vision.runner.load("efficientnet_lite0").success
        with pytest.raises(ModelChanged) as changed:
            vision.detect(photo("chelsea"))
        source.failed(changed.value, s)  # rebuilt at once on the new model
        assert source.vision is not vision and source.vision.role == "classifier" and source.ok
        assert len(source.vision.labels) == 1000  # the classifier's, from its metadata
    finally:
        spinner.executor.remove_node(service)
        service.destroy_node()
    absent = VisionSettings.of({"model_service": "/nobody/ml_model_service"})
    waiting = ModelSource(node, absent, lambda _v: None)
    sources.append(waiting)
    assert waiting.current(absent) is None and waiting.waiting and not waiting.ok
    assert waiting.state == "waiting for model service /nobody/ml_model_service (not discovered yet)"
