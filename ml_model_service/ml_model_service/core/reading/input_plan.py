"""A vision model's options (`VisionConfig`) and how its input is planned from them and from what the model says
about itself: the preprocessing (normalisation, size or resize rule of open dimensions) and, once the decoder is
known, the resize mode."""

from __future__ import annotations

from dataclasses import dataclass, field

from .decoders.base import DecoderConfig
from .hints import ModelHints
from .preprocess import MAX_INPUT_PIXELS, InputLayout, PreprocessConfig, RoleError, parse_size
from .results import FilterConfig

#: crop_fraction's default (256 -> 224); Ultralytics classifiers take 1.0 unless the user sets another.
DEFAULT_CROP_FRACTION = 0.875


@dataclass
class VisionConfig:
    """Everything that shapes how a model is read (see the vision node's parameters)."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    # auto: letterbox for YOLO (raw and end-to-end), centre crop for the bundled classifier, stretch otherwise
    resize_mode: str = "auto"  # auto | stretch | letterbox | center_crop
    remap_input_names: dict[str, str] = field(default_factory=dict)  # model tensor name -> "image"
    input_size: tuple[int, ...] = ()  # open input dimensions: (size,) or (height, width); () = the model's imgsz
    shortest_edge: tuple[int, ...] = ()  # open dimensions follow the image: (shortest,) or (shortest, longest)
    crop_fraction: float = DEFAULT_CROP_FRACTION  # center_crop: the share of the shorter side kept
    max_input_pixels: int = MAX_INPUT_PIXELS  # largest model input (height x width) fed
    masks: bool = True  # segmentation models: compute each kept detection's mask
    mask_threshold: float = 0.5  # mask probability above which a pixel belongs to the object


def preprocess_config(
    config: VisionConfig, hints: ModelHints, layout: InputLayout, describe: str, warnings: list[str]
) -> PreprocessConfig:
    """The preprocessing for `layout`: the options, with the model's own normalisation and input size (or resize
    rule) where the options leave them at their defaults."""
    pre = PreprocessConfig(**vars(config.preprocess))
    unset = tuple(pre.mean) == PreprocessConfig.mean and tuple(pre.std) == PreprocessConfig.std
    if unset and hints.mean is not None and hints.std is not None:
        pre.mean, pre.std = hints.mean, hints.std  # the model's image processor's
    pre.pil_resample = hints.resample  # the image processor's own resize (Pillow's, antialiased when it shrinks)
    pre.max_input_pixels = int(config.max_input_pixels)
    pre.crop_fraction = float(config.crop_fraction)
    if not 0.0 < pre.crop_fraction <= 1.0:
        raise RoleError(f"crop_fraction {pre.crop_fraction} must be in (0, 1]")
    pre.stride = hints.stride or 32
    try:
        option = parse_size(list(config.input_size))
        edges = parse_size(list(config.shortest_edge)) if config.shortest_edge else None
    except ValueError as exc:
        raise RoleError(str(exc)) from exc
    if edges and len(config.shortest_edge) == 1:
        edges = (edges[0], 0)
    fixed = (layout.height, layout.width)
    if layout.fixed:
        if layout.height * layout.width > pre.max_input_pixels:
            raise RoleError(
                f"model input {layout.name!r} is {fixed[0]} x {fixed[1]} = "
                f"{fixed[0] * fixed[1]} pixels, above max_input_pixels ({pre.max_input_pixels}); "
                f"refused before allocating it. Model tensors: {describe}"
            )
        if option and option != fixed:
            warnings.append(f"input_size {list(option)} ignored: the model's input is fixed at {list(fixed)}")
        pre.input_size = None
        return pre
    pre.input_size = option or (None if edges else hints.imgsz)
    if not pre.input_size:
        pre.shortest_edge, pre.longest_edge = edges or hints.edges or (0, 0)
        pre.edge_multiple = hints.edge_multiple if not edges else 0
    # At the model's own imgsz, as Ultralytics' predictor runs its dynamic exports; input_size is exact.
    pre.rect = not option and hints.family == "yolo"
    return pre


def choose_resize_mode(config: VisionConfig, role: str, hints: ModelHints, pre: PreprocessConfig) -> str:
    """`resize_mode` auto made concrete for the decoder's role, applied to `pre`; the mode."""
    mode = config.resize_mode
    default_crop = config.crop_fraction == DEFAULT_CROP_FRACTION  # (a crop_fraction the user set stays)
    if mode == "auto":
        if role == "yolo" or (role == "end2end" and hints.family != "rtdetr"):
            mode = "letterbox"
        elif role == "classifier" and hints.bundled:
            mode = "center_crop"  # how EfficientNet-Lite0 was trained and evaluated
        elif role == "classifier" and hints.ultralytics and hints.task == "classify":
            mode = "center_crop"  # Ultralytics' classify_transforms: shorter side to imgsz, centre crop
            if default_crop:
                pre.crop_fraction = 1.0
        elif hints.center_crop is not None and not config.input_size:
            mode = "center_crop"  # the image processor's own crop (ConvNeXt's crop_pct, crop_size)
            if default_crop:
                pre.crop_fraction = hints.center_crop
        else:
            mode = "stretch"
    pre.letterbox, pre.center_crop = mode == "letterbox", mode == "center_crop"
    return mode
