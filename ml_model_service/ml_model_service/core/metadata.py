"""Model metadata as Viam's ML model service defines it: tensor infos in model order, label files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

LABEL_TYPE_UNSPECIFIED = 0
LABEL_TYPE_TENSOR_VALUE = 1  # the tensor's values are label indices (e.g. a detector's class output)
LABEL_TYPE_TENSOR_AXIS = 2  # the position along the last axis is the label index (e.g. class scores)


@dataclass
class AssociatedFile:
    """A file attached to a tensor, such as its label file."""

    name: str
    description: str = ""
    label_type: int = LABEL_TYPE_UNSPECIFIED


@dataclass
class TensorSpec:
    """One model input or output. `shape` holds -1 where the model leaves a dimension open."""

    name: str
    data_type: str
    shape: list[int]
    description: str = ""
    associated_files: list[AssociatedFile] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelMetadata:
    """What a model is, takes and gives.

    `label_names` are the class names themselves (index → name; sparse ids allowed), so clients never
    need the label file. `properties` is the model's own embedded metadata (ONNX custom_metadata_map,
    e.g. Ultralytics names/imgsz/stride/task). `generation` identifies the loaded model on a model
    service: it changes on every successful swap (0 = not served by a model service)."""

    name: str
    type: str
    description: str = ""
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    label_names: dict[int, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    generation: int = 0

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    def describe_tensors(self) -> str:
        """One line per tensor ('input images: uint8 [1, 224, 224, 3]'), for error messages."""
        lines = [f"input {t.name}: {t.data_type} {list(t.shape)}" for t in self.inputs]
        lines += [f"output {t.name}: {t.data_type} {list(t.shape)}" for t in self.outputs]
        return "; ".join(lines)


#: Most nodes (scalars, lists, mappings: each alias counted as often as it is used) a metadata YAML may hold.
MAX_YAML_NODES = 100_000


def load_yaml_bounded(text: str, max_nodes: int = MAX_YAML_NODES):
    """`yaml.safe_load` of an exporter's metadata file, refused (ValueError) when it expands to more than
    `max_nodes` nodes: a few hundred bytes of nested aliases ("billion laughs") stand for billions of values."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return None
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > max_nodes:
            raise ValueError(f"the YAML expands to more than {max_nodes} values (nested aliases)")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    loader = yaml.SafeLoader(text)
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()
