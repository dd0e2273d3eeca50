"""Hostile model files and images are refused with bounded memory and CPU, before a runtime or decoder
allocates, and with an error that says what was declared and which limit it broke.

The hostile files are built here (ONNX graphs with onnx.helper, TFLite flatbuffers with LiteRT's schema).
Each refusal that would have cost gigabytes runs in a child process whose peak resident set is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as tfl
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.frames import imaging
from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.model import Model
from ml_model_service.core.runtimes import limits
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.limits import MAX_MODEL_TENSOR_BYTES, TensorSizeError
from ml_model_service.core.runtimes.registry import open_backend
from ml_model_service.core.tensors import TensorError

PKG = Path(__file__).resolve().parents[1]
#: The most a refusal may add to a process's peak resident set.
MAX_GROWTH_MB = 300
CAP_TEXT = f"{MAX_MODEL_TENSOR_BYTES} bytes per tensor (MAX_MODEL_TENSOR_BYTES)"


# --- building hostile files ------------------------------------------------------------------------------
def onnx_file(
    path: Path,
    nodes: list,
    inputs: list,
    outputs: list,
    initializers: tuple = (),
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write an opset-17 ONNX model."""
    model = helper.make_model(
        helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers)),
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
    )
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def expand_by_constant(path: Path) -> Path:
    """A 1-byte input expanded to 1 GiB by a constant shape (the output declares no shape)."""
    return onnx_file(
        path,
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        [numpy_helper.from_array(np.array([1 << 30], np.int64), "shape")],
    )


def expand_by_input_shape(path: Path) -> Path:
    """An N-byte input expanded to N x N bytes (1 GiB for N = 32768): the size follows from the input's shape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Concat", ["s", "s"], ["ss"], axis=0),
        helper.make_node("Unsqueeze", ["x", "axis"], ["row"]),
        helper.make_node("Expand", ["row", "ss"], ["y"]),
    ]
    return onnx_file(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        [numpy_helper.from_array(np.array([0], np.int64), "axis")],
    )


def expand_by_input_values(path: Path) -> Path:
    """A 1-byte input expanded to the shape another input holds: the size follows from input values only."""
    return onnx_file(
        path,
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        [
            helper.make_tensor_value_info("x", TensorProto.UINT8, [1]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
    )


def folded_constant(path: Path) -> Path:
    """A 1 GiB ConstantOfShape that onnxruntime would fold (allocate) while loading."""
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["c"], value=numpy_helper.from_array(np.array([1], np.uint8))),
        helper.make_node("ReduceMax", ["c"], ["m"], keepdims=0),
        helper.make_node("Add", ["x", "m"], ["y"]),
    ]
    return onnx_file(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        [numpy_helper.from_array(np.array([1 << 30], np.int64), "shape")],
    )


def big_onnx_input(path: Path) -> Path:
    """A model declaring a 12000x12000 RGB float input (1.7 GB)."""
    shape = [1, 3, 12000, 12000]
    return onnx_file(
        path,
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )


def tflite_conv(path: Path, side: int, dynamic: bool = False) -> Path:
    """A float 3x3 convolution over a side x side RGB input (12000: 1.7 GB tensors, a 10 GB XNNPACK indirection
    buffer); `dynamic`: height and width open (-1 in the shape signature)."""
    signature = [1, -1, -1, 3] if dynamic else None
    tensors = [
        tfl.TensorT(
            shape=[1, side, side, 3], type=tfl.TensorType.FLOAT32, buffer=1, name="input", shapeSignature=signature
        ),
        tfl.TensorT(shape=[3, 3, 3, 3], type=tfl.TensorType.FLOAT32, buffer=2, name="weights"),
        tfl.TensorT(shape=[3], type=tfl.TensorType.FLOAT32, buffer=3, name="bias"),
        tfl.TensorT(
            shape=[1, side, side, 3], type=tfl.TensorType.FLOAT32, buffer=4, name="output", shapeSignature=signature
        ),
    ]
    options = tfl.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = tfl.Padding.SAME, 1, 1
    conv = tfl.OperatorT(
        opcodeIndex=0,
        inputs=[0, 1, 2],
        outputs=[3],
        builtinOptions=options,
        builtinOptionsType=tfl.BuiltinOptions.Conv2DOptions,
    )
    graph = tfl.SubGraphT(tensors=tensors, inputs=[0], outputs=[3], operators=[conv], name="main")
    weights = np.full((3, 3, 3, 3), 0.1, np.float32).tobytes()
    model = tfl.ModelT(
        version=3,
        subgraphs=[graph],
        operatorCodes=[
            tfl.OperatorCodeT(
                deprecatedBuiltinCode=tfl.BuiltinOperator.CONV_2D, builtinCode=tfl.BuiltinOperator.CONV_2D
            )
        ],
        buffers=[
            tfl.BufferT(),
            tfl.BufferT(),
            tfl.BufferT(data=list(weights)),
            tfl.BufferT(data=[0] * 12),
            tfl.BufferT(),
        ],
    )
    builder = tfl.flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def jpeg_declaring(width: int, height: int) -> bytes:
    """A 16x16 JPEG (about 600 bytes) whose frame header is rewritten to declare width x height."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    """A 16x16 PNG whose IHDR is rewritten to declare width x height."""
    data = bytearray(cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1])
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


# --- measuring a refusal in its own process ----------------------------------------------------------------
def refusal_in_child(setup: str, attack: str) -> dict:
    """Run `setup`, then `attack` in a fresh Python; returns its error text, the growth of its peak resident set
    over the attack (MB) and the attack's CPU seconds."""
    script = textwrap.dedent("""
        import json, resource, sys, time
        import numpy as np
        {setup}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu = time.process_time()
        try:
            {attack}
            error = ""
        except Exception as exc:
            error = f"{{type(exc).__name__}}: {{exc}}"
        cpu = time.process_time() - cpu
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(json.dumps({{"error": error, "growth_mb": growth, "cpu_s": cpu}}))
    """).format(setup=setup, attack=attack)
    path = os.pathsep.join(p for p in (str(PKG), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


BACKEND_SETUP = (
    "import onnx, onnxruntime\nfrom pathlib import Path\n"
    "from ml_model_service.core.runtimes.registry import open_backend\n"
    "from ml_model_service.core.loading.model import Model"
)


def big_tflite_conv(path: Path) -> Path:
    """A float 3x3 convolution over a 12000x12000 RGB input."""
    return tflite_conv(path, 12000)


@pytest.mark.parametrize(
    "build, file, error",
    [
        (
            big_tflite_conv,
            "conv.tflite",
            "ModelLoadError: conv.tflite: tensor 'input' of shape [1, 12000, 12000, 3] "
            "(float32) would need 1728000000 bytes",
        ),
        (big_onnx_input, "big.onnx", "ModelLoadError: big.onnx: input 'x' of shape [1, 3, 12000, 12000] (float32)"),
        (expand_by_constant, "expand.onnx", "ModelLoadError: expand.onnx: output 'y' of shape [1073741824] (uint8)"),
        (folded_constant, "fold.onnx", "ModelLoadError: fold.onnx: tensor 'c' of shape [1073741824] (uint8)"),
    ],
    ids=["tflite-12000-conv", "onnx-12000-input", "onnx-expand-constant", "onnx-folded-constant"],
)
def test_models_declaring_huge_tensors_are_refused_at_load(tmp_path: Path, build, file: str, error: str) -> None:
    """Declared (or, for their declared inputs, inferred) tensors above the cap: refused before allocation."""
    path = build(tmp_path / file)
    result = refusal_in_child(BACKEND_SETUP, f"Model({str(path)!r}, providers=['cpu'])")
    assert result["error"].startswith(error), result
    assert CAP_TEXT in result["error"]
    assert result["growth_mb"] < MAX_GROWTH_MB and result["cpu_s"] < 5, result


def test_tflite_convolution_workspace_counts(tmp_path: Path) -> None:
    """A 4000x4000 input is under the cap (192 MB), its convolution's indirection buffer (1.15 GB) is not."""
    path = tflite_conv(tmp_path / "conv4000.tflite", 4000)
    result = refusal_in_child(BACKEND_SETUP, f"open_backend(Path({str(path)!r}))")
    assert "CONV_2D operator 0's workspace" in result["error"] and CAP_TEXT in result["error"], result
    assert result["growth_mb"] < MAX_GROWTH_MB, result


def test_onnx_output_bounded_by_input_shape_is_refused_before_the_run(tmp_path: Path) -> None:
    """A 32 KB request that would make a 1 GiB output: refused by shape inference before session.run."""
    path = expand_by_input_shape(tmp_path / "square.onnx")
    result = refusal_in_child(
        f"{BACKEND_SETUP}\nmodel = Model({str(path)!r}, providers=['cpu'])\nx = np.zeros(32768, np.uint8)",
        "model.infer({'x': x})",
    )
    assert result["error"].startswith(
        "TensorSizeError: for input shapes {'x': (32768,)}: output 'y' of shape [32768, 32768] (uint8)"
    ), result
    assert CAP_TEXT in result["error"]
    assert result["growth_mb"] < MAX_GROWTH_MB and result["cpu_s"] < 2, result
    model = Model(str(path), providers=["cpu"])
    assert model.infer({"x": np.ones(100, np.uint8)})["y"].shape == (100, 100)  # small requests still run
    with pytest.raises(TensorError):  # the model service answers "bad request"
        model.infer({"x": np.zeros(32768, np.uint8)})


def test_shape_checks_are_cached_and_the_cache_is_bounded(tmp_path: Path) -> None:
    """One shape inference per input-shape signature, and no more than SHAPE_CHECK_CACHE kept."""
    backend = open_backend(expand_by_input_shape(tmp_path / "square.onnx"), providers=["cpu"])
    shapes = backend._shapes
    for n in range(1, limits.SHAPE_CHECK_CACHE + 10):
        backend.infer({"x": np.zeros(n, np.uint8)})
    assert len(shapes._cache) == limits.SHAPE_CHECK_CACHE
    calls = []
    scan = shapes.scan
    shapes.scan = lambda s: calls.append(s) or scan(s)
    backend.infer({"x": np.zeros(limits.SHAPE_CHECK_CACHE + 5, np.uint8)})
    assert calls == []  # a recent signature: no second inference
    backend.infer({"x": np.zeros(1000, np.uint8)})
    assert calls == [{"x": (1000,)}]


def test_onnx_output_known_only_after_the_run_is_refused_after_it(tmp_path: Path, monkeypatch) -> None:
    """Sizes that follow from input values cannot be known before; the output is refused after the run."""
    monkeypatch.setattr(limits, "MAX_MODEL_TENSOR_BYTES", 1 << 20)
    model = Model(str(expand_by_input_values(tmp_path / "values.onnx")), providers=["cpu"])
    assert model.infer({"x": np.ones(1, np.uint8), "shape": np.array([1000])})["y"].shape == (1000,)
    with pytest.raises(
        TensorSizeError,
        match=r"output 'y' of shape \[2097152\] .* above the limit of 1048576 bytes "
        r"per tensor .*only known after the run",
    ):
        model.infer({"x": np.ones(1, np.uint8), "shape": np.array([2 << 20])})


def test_tflite_resize_is_checked_before_allocating(tmp_path: Path) -> None:
    """Resizing an open input: the input itself, and every tensor and workspace the new shape makes, are
    checked before the real interpreter allocates; a refused resize leaves the model working."""
    path = tflite_conv(tmp_path / "open.tflite", 1, dynamic=True)  # declared 1x1, as converters write open sizes
    result = refusal_in_child(
        f"{BACKEND_SETUP}\nbackend = open_backend(Path({str(path)!r}))\nx = np.zeros((1, 3000, 3000, 3), np.float32)",
        "backend.infer({'input': x})",
    )
    assert result["error"].startswith(
        "TensorSizeError: inputs resized to [[1, 3000, 3000, 3]]: the CONV_2D operator 0's workspace"
    ), result
    assert CAP_TEXT in result["error"] and result["growth_mb"] < MAX_GROWTH_MB, result
    backend = open_backend(path)
    with pytest.raises(
        TensorSizeError,
        match=r"input 'input' of shape \[1, 12000, 12000, 3\] \(float32\) would "
        r"need 1728000000 bytes, above the limit",
    ):
        backend.infer({"input": np.zeros((1, 12000, 12000, 3), np.float32)})  # zero pages: never touched
    assert backend.infer({"input": np.ones((1, 480, 640, 3), np.float32)})["output"].shape == (1, 480, 640, 3)
    assert backend.infer({"input": np.ones((1, 8, 8, 3), np.float32)})["output"].shape == (1, 8, 8, 3)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_models_still_load_and_infer(name: str) -> None:
    """The caps leave the bundled models alone, on the runtime their extension implies."""
    backend = open_backend(BUNDLED_DIR / BUNDLED[name].file, providers=["cpu"], num_threads=1)
    feeds = {s.name: np.zeros(s.shape, s.data_type) for s in backend.inputs}
    outputs = backend.infer(feeds)
    assert [o.name for o in backend.outputs] == list(outputs)
    if backend.kind == "tflite":
        assert max(size[3] for size in limits.tflite_sizes(backend.interpreter)) < MAX_MODEL_TENSOR_BYTES / 50
    assert len(Model(name, providers=["cpu"], num_threads=1).labels) >= 80


def test_without_the_onnx_package_declared_sizes_are_still_checked(tmp_path: Path, monkeypatch) -> None:
    """No onnx installed: the declared shapes are checked at load, outputs after each run, and a warning says so."""
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModelLoadError, match=r"tensor 'x' of shape \[1, 3, 12000, 12000\] \(float32\)"):
        open_backend(big_onnx_input(tmp_path / "big.onnx"), providers=["cpu"])
    backend = open_backend(BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file, providers=["cpu"], num_threads=1)
    assert any("onnx package is not installed" in w for w in backend.warnings)
    assert backend.infer({s.name: np.zeros(s.shape, s.data_type) for s in backend.inputs})


# --- images ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, kind", [(jpeg_declaring, "jpeg"), (png_declaring, "png")])
def test_small_images_declaring_large_ones_are_refused_before_decoding(tmp_path: Path, make, kind: str) -> None:
    """Under max_image_pixels (49 MP < 50 MP), but far more pixels than the bytes can encode."""
    path = tmp_path / f"bomb.{kind}"
    path.write_bytes(make(7000, 7000))
    result = refusal_in_child(
        f"from ml_model_service.core.frames import imaging\ndata = open({str(path)!r}, 'rb').read()",
        "imaging.decode_compressed(data)",
    )
    assert result["error"].startswith(f"ImageError: compressed {kind} image declares 7000x7000"), result
    assert "truncated or a decompression bomb" in result["error"]
    assert result["growth_mb"] < 50 and result["cpu_s"] < 0.1, result


@pytest.mark.parametrize("size", [(640, 480), (4000, 3000)])
def test_legitimate_uniform_images_still_decode(size: tuple[int, int]) -> None:
    """Uniform black images compress best of all: every encoder setting cv2 offers stays above the bound."""
    width, height = size
    for channels in (3, 1):
        image = np.zeros((height, width, channels), np.uint8) if channels == 3 else np.zeros((height, width), np.uint8)
        settings = [
            (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
            (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1]),
            (".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        ]
        if channels == 1:
            settings.append((".png", [cv2.IMWRITE_PNG_COMPRESSION, 9, cv2.IMWRITE_PNG_BILEVEL, 1]))
        for ext, params in settings:
            data = cv2.imencode(ext, image, params)[1].tobytes()
            assert imaging.check_bomb(data) == (ext[1:].replace("jpg", "jpeg"), width, height)
            if params == [cv2.IMWRITE_JPEG_QUALITY, 95] or params == [cv2.IMWRITE_PNG_COMPRESSION, 9]:
                assert imaging.decode_compressed(data).shape == (height, width, 3)


def test_arithmetic_coded_jpeg_is_decoded_only_when_small() -> None:
    """Arithmetic coding has no floor on bytes per pixel: large declared sizes are refused."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((3000, 4000, 3), np.uint8))[1])
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    data[sof + 1] = 0xC9
    with pytest.raises(imaging.ImageError, match=r"arithmetic-coded \(SOF 0xC9\) and declares 4000x3000"):
        imaging.check_bomb(bytes(data))


def test_decode_budget_is_a_token_bucket_over_declared_pixels() -> None:
    """Burst first, then the rate; an image above the burst passes only on a full bucket; 0 = no budget."""
    now = [0.0]
    budget = imaging.DecodeBudget(pixels_per_s=1000, burst_s=2, clock=lambda: now[0])
    assert budget.capacity == 2000 and budget.take(1500) and budget.take(500) and not budget.take(1)
    now[0] = 0.5
    assert budget.take(500) and not budget.take(1)
    now[0] = 100.0  # refills up to the burst only
    assert budget.tokens == 2000
    assert budget.take(5000) and budget.tokens == -3000 and not budget.take(1)  # a big one passes, then owes
    now[0] = 105.0
    assert budget.take(1000) and not budget.take(1001)
    assert imaging.DecodeBudget(0).take(10**12)
    with pytest.raises(ValueError):
        imaging.DecodeBudget(1000, burst_s=0)
    with pytest.raises(ValueError):
        budget.take(-1)


def test_decode_compressed_takes_from_the_budget() -> None:
    """A spent budget refuses before decoding, with DecodeBudgetError (an ImageError)."""
    data = cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))[1].tobytes()
    budget = imaging.DecodeBudget(pixels_per_s=640 * 480, burst_s=1, clock=lambda: 0.0)
    assert imaging.decode_compressed(data, budget=budget).shape == (480, 640, 3)
    with pytest.raises(imaging.DecodeBudgetError, match=r"640x480 skipped: the decode budget \(307200 pixels/s"):
        imaging.decode_compressed(data, budget=budget)


# --- metadata ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names, reason",
    [
        ("{1e999: 'x'}", "class id inf is not a whole number"),
        ("{0.5: 'x'}", "class id 0.5 is not a whole number"),
        ("{[0]: 'x'}", "the class names cannot be read (TypeError"),
    ],
)
def test_unreadable_class_names_are_a_load_error(tmp_path: Path, names: str, reason: str) -> None:
    """Names metadata that cannot be read: ModelLoadError with the reason, not another exception."""
    path = onnx_file(
        tmp_path / "names.onnx",
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        metadata={"names": names},
    )
    with pytest.raises(ModelLoadError, match="the labels it carries cannot be read") as caught:
        Model(str(path), providers=["cpu"])
    assert reason in str(caught.value)


def test_readable_class_names_still_load(tmp_path: Path) -> None:
    """Ultralytics' names and a string-keyed dict are still labels."""
    path = onnx_file(
        tmp_path / "names.onnx",
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        metadata={"names": "{0: 'person', 1: 'car', '2': 'dog', 3.0: 'cat'}"},
    )
    assert Model(str(path), providers=["cpu"]).labels.names == {0: "person", 1: "car", 2: "dog", 3: "cat"}


def shape_bomb(path: Path) -> Path:
    """An ONNX file of about 1 KB whose shape, concatenated with itself 26 times, stands for 2^27 values: ONNX's
    data propagation would hold them at about 140 bytes each (18 GB)."""
    nodes = [helper.make_node("Shape", ["x"], ["s0"])]
    for i in range(26):
        nodes.append(helper.make_node("Concat", [f"s{i}", f"s{i}"], [f"s{i + 1}"], axis=0))
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("s26", TensorProto.INT64, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_a_shape_inference_bomb_is_refused_within_its_budget(tmp_path):
    # The size guard runs ONNX shape inference in its capped helper process (core/runtimes/shape_helper.py).
    path = shape_bomb(tmp_path / "bomb.onnx")
    assert path.stat().st_size < 2000
    code = textwrap.dedent(f"""
        import resource, time
        from ml_model_service.core.loading.model import Model
        from ml_model_service.core.runtimes.backend import ModelLoadError
        before, t = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
        try:
            Model({str(path)!r}, providers=["cpu"])
            print("LOADED")
        except ModelLoadError as exc:
            print("REFUSED", exc)
        print("PEAK_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, time.monotonic() - t)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "REFUSED" in out and "shape inference" in out and "budget" in out, out
    peak_mb, seconds = (float(v) for v in out.split("PEAK_MB")[1].split())
    assert peak_mb < 300 and seconds < 10, out


def test_an_input_size_too_slow_for_this_machine_is_refused_before_it_runs(tmp_path):
    # Open input dimensions: input_size [4096, 4096] on a model that takes tens of ms at 320 x 320 would take tens
    # of seconds a frame (and the trial run would hold the node that long); it is refused from two small runs.
    from ml_model_service.core.reading.preprocess import RoleError
    from ml_model_service.core.reading.vision import VisionConfig, VisionModel

    rng = np.random.default_rng(0)
    channels, nodes, inits, previous = 3, [], [], "images"
    for i in range(4):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (48, channels, 3, 3)).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        previous, channels = f"c{i}", 48
    graph = helper.make_graph(
        nodes,
        "heavy",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, 48, "h", "w"])],
        inits,
    )
    path = tmp_path / "heavy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    model = Model(str(path), providers=["cpu"])
    started = time.monotonic()
    with pytest.raises(RoleError, match=r"4096 x 4096 would take about \d+ s a run .* set a smaller input_size"):
        VisionModel(model, None, VisionConfig(input_size=(4096, 4096)))
    assert time.monotonic() - started < 5
