"""Raw output tensors → boxes, scores and classes, or class probabilities.

Layouts, one family per module, each with its decoder and the `recognise(ctx)` that tells its layout and
returns the decoder built for it (`registry.find_decoder` tries them in order, from the metadata, the model's
own properties and a trial run); decoders return arrays in source-image pixels; naming, filtering and messages
happen elsewhere:

- `detector` (ssd.py): SSD-style boxes + scores (+ category, + count), as TFLite's detection post-processing,
  torchvision (boxes/labels/scores) and the official RT-DETR/D-FINE exports (with `orig_target_sizes`) emit;
- `yolo` (yolo.py): raw YOLO, v5 `[1, N, 5+C]` (objectness) and v8/v11 `[1, 4+C, N]`, also seg heads
  (`+32` mask coefficients and a protos output, read into instance masks: reading.masks) and pose heads
  (`+K*3` keypoints, ignored) used as detectors, and corner boxes `[1, N, 4]` + scores `[1, N, C]` in two
  tensors (YOLO-NAS, PP-YOLOE), with NMS; the candidates must be the head's grid for the input size, with
  boxes on their grid cells;
- `end2end` (end2end.py): `[1, N, 6(+extra)]` rows of box, score, class (+ mask coefficients with a protos
  output): YOLO26/YOLOv10/`nms=True` exports (corner boxes in input pixels) and Ultralytics RT-DETR
  (normalised centre boxes);
- `detr` (detr.py): DETR family, normalised centre/size boxes + class logits (sigmoid, or softmax with a
  no-object class): Hugging Face DETR (`pred_boxes`/`logits`), RF-DETR (`dets`/`labels`), older Ultralytics
  RT-DETR `[1, 300, 4+C]`;
- `classifier` (classifier.py): one score vector.

Every decoder checks what it reads: scores must lie in [0, 1] after the decoder's activation, class ids must
be whole numbers, boxes must be boxes. What does not fit is refused (`Refused`, a `RoleError`) with the
model's tensors and the one option that would help, or the statement that none can: a confident wrong answer
is worse than none.

Shared: base.py (the `Decoder` interface VisionModel calls, options, results, the recognisers' `Context`),
boxes.py (box units and formats, NMS, the YOLO grid), scores.py (dequantising, activations, the checks).
"""
