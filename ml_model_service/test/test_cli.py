"""The offline command, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from skimage import data


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml_model_service", *args], capture_output=True, text=True, timeout=120
    )


def test_detect_and_classify_print_json_lines():
    images = [str(Path(data.data_dir) / f) for f in ("motorcycle_left.png", "coffee.png")]
    out = run_cli("detect", *images)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["image"] for line in lines] == images
    assert (lines[0]["width"], lines[0]["height"]) == (741, 500)
    moto = [d for d in lines[0]["detections"] if d["class_name"] == "motorcycle"]
    assert moto and set(moto[0]) == {"class_id", "class_name", "confidence", "x_min", "y_min", "x_max", "y_max"}
    assert moto[0]["class_id"] == 3  # the bundled COCO file's sparse ids
    assert 0 <= moto[0]["x_min"] < moto[0]["x_max"] <= 741
    assert "cup" in [d["class_name"] for d in lines[1]["detections"]]

    out = run_cli("classify", "--top", "2", str(Path(data.data_dir) / "chelsea.png"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["classifications"]) == 2 and "cat" in result["classifications"][0]["class_name"]
    assert result["classifications"][0]["class_id"] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat


def test_metadata_infer_and_errors(tmp_path):
    out = run_cli("metadata", "efficientnet_lite0_tflite")
    meta = json.loads(out.stdout)
    assert meta["outputs"][0]["shape"] == [1, 1000] and meta["outputs"][0]["data_type"] == "uint8"
    # backend auto says which runtime runs it and why (measured at the first load here, or cached)
    assert meta["outputs"][0]["extra"]["runtime_choice"].startswith("auto: "), meta["outputs"][0]["extra"]
    assert meta["type"] in ("tflite", "openvino")
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((1, 224, 224, 3), np.uint8))
    out = run_cli("infer", "efficientnet_lite0", "--input", f"images={tmp_path / 'x.npy'}")
    outputs = json.loads(out.stdout)["outputs"]
    assert outputs[0]["name"] == "Softmax" and outputs[0]["data_type"] == "uint8"
    np.save(tmp_path / "bad.npy", np.zeros((1, 10, 10, 3), np.uint8))
    out = run_cli("infer", "efficientnet_lite0", "--input", f"images={tmp_path / 'bad.npy'}")
    assert out.returncode == 2 and "shape" in json.loads(out.stderr)["error"]
    out = run_cli("detect", str(tmp_path / "nope.png"))
    assert out.returncode == 1 and "cannot read image" in out.stdout


def test_decoding_options_as_flags_and_from_the_nodes_parameter_file(tmp_path):
    from test_byom_layouts import NAMES, NCHW, end2end_rows, graph

    path = graph(tmp_path / "e2e.onnx", NCHW, {"output0": end2end_rows()})
    (tmp_path / "e2e.txt").write_text("\n".join(NAMES.values()) + "\n")
    image = tmp_path / "black.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.zeros((720, 1280, 3), np.uint8))
    out = run_cli("detect", "--model", str(path), str(image))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    error = json.loads(out.stderr.splitlines()[-1])["error"]
    assert "box_format" in error and "output output0: float32 [1, 300, 6]" in error
    out = run_cli("detect", "--model", str(path), "--box_format", "xyxy", "--resize_mode", "letterbox", str(image))
    assert out.returncode == 0, out.stderr
    dets = json.loads(out.stdout)["detections"]
    assert [(d["class_id"], d["class_name"]) for d in dets] == [(1, "car"), (2, "dog"), (0, "person")]
    assert [dets[0][k] for k in ("x_min", "y_min", "x_max", "y_max")] == [200.0, 120.0, 600.0, 520.0]
    params = tmp_path / "vision.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    box_format: xyxy\n    resize_mode: letterbox\n    confidence_threshold: 0.7\n"
    )
    out = run_cli("detect", "--model", str(path), "--params-file", str(params), str(image))
    assert out.returncode == 0, out.stderr
    assert [d["class_name"] for d in json.loads(out.stdout)["detections"]] == ["car", "dog"]
    out = run_cli("detect", "--model", str(path), "--params-file", str(params), "--threshold", "0.85", str(image))
    assert [d["class_name"] for d in json.loads(out.stdout)["detections"]] == ["car"]  # flags win


def test_every_failure_is_a_json_line(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # A classifier whose graph only works at 320 x 320 although its input dimensions are open: onnxruntime
    # fails on other sizes, and that failure is reported per image.
    nodes = [
        helper.make_node("Reshape", ["images", "shape"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Softmax", ["m"], ["probability"], axis=1),
    ]
    g = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array([1, 3, 320, 320], np.int64), "shape")],
    )
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    image = str(Path(data.data_dir) / "chelsea.png")
    # tried at an odd size at load: refused there, naming the option that works (input_size, tried); onnxruntime
    # pinned, whose failure names the node (backend auto may pick OpenVINO on a loaded machine, which does not)
    out = run_cli("classify", "--model", str(path), "--backend", "onnx", image)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    error = json.loads(out.stderr.splitlines()[-1])["error"]
    assert "Reshape" in error and "input_size: [320, 320] was tried and runs" in error, error
    out = run_cli("classify", "--model", str(path), "--backend", "onnx", "--input_size", "320", image)
    assert out.returncode == 0, out.stderr
    assert [c["class_id"] for c in json.loads(out.stdout)["classifications"]] == [0, 1, 2]
    for args, text in (
        (("detect", "--no-such-flag", image), "unrecognized arguments"),
        (("detect", "--model_type", "panoptic", image), "not one of"),
        (("detect", "--input_mean", "0.5,0.5", image), "exactly 3"),
        (("detect", "--model", str(tmp_path / "missing.onnx"), image), "missing.onnx"),
        (("detect", "--params-file", str(tmp_path / "none.yaml"), image), "none.yaml"),
    ):
        out = run_cli(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert text in json.loads(out.stderr.splitlines()[-1])["error"]
