"""core/loading/trust.py, the trust boundary in the ROS-free core: allowed folders, checksums, bounded labels.
The tensor and image caps are in core/test_tensors.py and core/frames/test_imaging.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.model import Model
from ml_model_service.core.loading.trust import MAX_LABEL_BYTES, ModelPolicy, TrustError, read_sums, sha256

from conftest import constant_model

SSD = BUNDLED["ssd_mobilenet_v2_coco"].file


def _same_refusal(messages: dict[str, str]) -> set[str]:
    """The refusal texts with the caller's own path taken out: one text means no oracle."""
    return {message.replace(repr(ref), "<ref>") for ref, message in messages.items()}


def test_paths_outside_the_allowed_folders_get_one_message_whether_they_exist_or_not(tmp_path):
    allowed = tmp_path / "models"
    allowed.mkdir()
    shutil.copy(BUNDLED_DIR / SSD, allowed / "det.onnx")
    (tmp_path / "secret.txt").write_text("token\n")
    os.symlink(tmp_path / "secret.txt", allowed / "link.txt")
    os.symlink("/etc", allowed / "etc")
    policy = ModelPolicy.for_folders([allowed])
    refs = [
        "/etc/shadow",
        "/root/.ssh/id_rsa",
        "/etc",
        str(tmp_path / "secret.txt"),
        str(allowed / "missing.onnx"),
        str(allowed / "../secret.txt"),
        str(allowed / "link.txt"),
        str(allowed / "etc/passwd"),
        str(allowed),
        "/proc/self/environ",
        "/dev/zero",
    ]
    messages = {}
    for ref in refs:
        with pytest.raises(TrustError) as info:
            policy.resolve(ref, "label")
        messages[ref] = str(info.value)
    assert len(_same_refusal(messages)) == 1, messages
    assert "not found in the allowed folders" in messages["/etc/shadow"] and str(allowed) in messages["/etc/shadow"]
    assert policy.resolve(str(allowed / "sub/../det.onnx")) == (allowed / "det.onnx").resolve()

    # the same through Model: model and label paths, before any backend sees the file
    model_messages = {}
    for ref in ("/etc/shadow", "/etc", str(tmp_path / "nothing.onnx"), str(allowed / "link.txt")):
        with pytest.raises(TrustError) as info:
            Model(ref, policy=policy, providers=["cpu"])
        model_messages[ref] = str(info.value)
    assert len(_same_refusal(model_messages)) == 1, model_messages
    with pytest.raises(TrustError, match="not found in the allowed folders"):
        Model(str(allowed / "det.onnx"), "/etc/shadow", policy=policy, providers=["cpu"])
    model = Model(str(allowed / "det.onnx"), policy=policy, providers=["cpu"])
    assert model.labels is None  # no label file beside it (link.txt is not a label name)


def test_defaults_allow_bundled_models_and_the_repository_only(tmp_path):
    repo = tmp_path / "repo"
    (repo / "cats").mkdir(parents=True)
    shutil.copy(BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file, repo / "cats" / "model.onnx")
    # a label file beside the model that is a symlink out of the allowed folders is ignored, not read
    (tmp_path / "secret.txt").write_text("secret-token\n")
    os.symlink(tmp_path / "secret.txt", repo / "cats" / "labels.txt")
    policy = ModelPolicy.for_folders([], repo)
    assert policy.allowed == (repo.resolve(), BUNDLED_DIR.resolve())
    model = Model("cats", repository=repo, policy=policy, providers=["cpu"])
    assert model.labels is None  # the labels.txt symlink leading out was not followed
    assert Model("ssd_mobilenet_v2_coco", policy=policy, providers=["cpu"]).digest
    for ref in ("..", "../repo/cats", "cats/../../secret"):
        with pytest.raises(TrustError):
            Model(ref, repository=repo, policy=policy, providers=["cpu"])
    with pytest.raises(TrustError, match="model repository not found in the allowed folders"):
        Model("cats", repository=tmp_path, policy=policy, providers=["cpu"])


def test_label_files_are_bounded_text(tmp_path):
    policy = ModelPolicy.for_folders([tmp_path])
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # 1 GiB, sparse: refused by its size, never read
        f.truncate(1 << 30)
    with pytest.raises(TrustError, match=f"1073741824 bytes, above the limit of {MAX_LABEL_BYTES} bytes"):
        policy.read_labels(huge)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"person\ncar\n\x00\x01\x02ELF")
    with pytest.raises(TrustError, match="not text"):
        policy.read_labels(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(TrustError, match="not UTF-8"):
        policy.read_labels(latin)
    good = tmp_path / "coco.txt"
    good.write_text("0  person\n2  car\n90  toothbrush\n", encoding="utf-8")
    assert policy.read_labels(good).names == {0: "person", 2: "car", 90: "toothbrush"}


def test_bit_flipped_bundled_copies_are_refused_by_checksums(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(BUNDLED_DIR / "SHA256SUMS", repo / "SHA256SUMS")
    policy = ModelPolicy.for_folders([], repo)
    names = [BUNDLED[n].file for n in ("ssd_mobilenet_v2_coco", "efficientnet_lite0", "efficientnet_lite0_tflite")]
    rng = np.random.default_rng(7)
    for name in names:
        data = bytearray((BUNDLED_DIR / name).read_bytes())
        for trial in range(3):  # a flip anywhere: header, weights, tail
            flipped = bytearray(data)
            pos = int(rng.integers(0, len(flipped)))
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
            target = repo / name
            target.write_bytes(bytes(flipped))
            with pytest.raises(TrustError, match="failed its integrity check") as info:
                Model(str(target), policy=policy, providers=["cpu"])
            assert name in str(info.value) and "SHA256SUMS" in str(info.value), trial
        (repo / name).write_bytes(bytes(data))  # the intact copy loads
        assert Model(str(repo / name), policy=policy, providers=["cpu"]).digest == sha256(BUNDLED_DIR / name)
    unlisted = repo / "extra.onnx"
    shutil.copy(BUNDLED_DIR / SSD, unlisted)
    with pytest.raises(TrustError, match="not listed in"):
        Model(str(unlisted), policy=policy, providers=["cpu"])
    # the shipped checksums cover every bundled file
    listed = read_sums(BUNDLED_DIR / "SHA256SUMS")
    for b in BUNDLED.values():
        assert listed[b.file] == sha256(BUNDLED_DIR / b.file) and listed[b.labels] == sha256(BUNDLED_DIR / b.labels)


def test_onnx_external_data_cannot_leave_the_model_folder(tmp_path):
    folder, outside = tmp_path / "m", tmp_path / "out"
    folder.mkdir()
    outside.mkdir()
    np.arange(4, dtype=np.float32).tofile(outside / "secret.bin")
    np.arange(4, dtype=np.float32).tofile(folder / "inside.bin")
    os.symlink(outside / "secret.bin", folder / "link.bin")

    def model(location: str, name: str) -> Path:
        w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", "16")):
            entry = w.external_data.add()
            entry.key, entry.value = k, v
        graph = helper.make_graph(
            [helper.make_node("Add", ["x", "w"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
            [w],
        )
        path = folder / f"{name}.onnx"
        path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
        return path

    policy = ModelPolicy.for_folders([folder])
    ok = Model(str(model("inside.bin", "ok")), policy=policy, providers=["cpu"])
    assert ok.infer({"x": np.ones(4, np.float32)})["y"].tolist() == [1, 2, 3, 4]
    for location, name in (("../out/secret.bin", "up"), ("link.bin", "link"), (str(outside / "secret.bin"), "abs")):
        with pytest.raises(Exception, match="outside the model's folder|not found in the allowed folders"):
            Model(str(model(location, name)), policy=policy, providers=["cpu"])
    # a hard link inside the folder can carry any file's contents: refused as well
    os.link(outside / "secret.bin", folder / "hard.bin")
    with pytest.raises(TrustError, match="hard links"):
        Model(str(model("hard.bin", "hard")), policy=policy, providers=["cpu"])


def test_embedded_metadata_and_label_names_in_the_metadata(tmp_path):
    path = constant_model(tmp_path / "yolo.onnx", [1, 3, 64, 64], {"output0": np.zeros((1, 6, 10), np.float32)})
    proto = onnx.load(path)
    for key, value in {"names": "{0: 'cat', 5: 'dog'}", "imgsz": "[64, 64]", "stride": "32", "task": "detect"}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, path)
    meta = Model(str(path), providers=["cpu"]).metadata
    assert meta.properties == {"names": "{0: 'cat', 5: 'dog'}", "imgsz": "[64, 64]", "stride": "32", "task": "detect"}
    assert meta.label_names == {0: "cat", 5: "dog"}
    coco = Model("ssd_mobilenet_v2_coco", providers=["cpu"]).metadata.label_names
    assert coco[0] == "person" and coco[89] == "toothbrush" and 11 not in coco  # sparse COCO ids kept
