"""Tracking ids for detections across frames, with Norfair (a maintained multi-object-tracking library:
a Kalman filter per object, detections matched by box IoU, class-aware).

Library choice: `norfair-enough` (the maintained fork of tryolabs/norfair) needs only numpy, scipy and rich;
the ByteTrack of `trackers`/`supervision` pulls opencv-python (a second cv2 next to the project's
opencv-python-headless), av and matplotlib, and the original `norfair` pins numpy < 2.

An id is given to a detection from the frame it is first matched to a track (`min_hits` = 1: at once) and
kept while the object is seen; a track unmatched for longer than it has been confirmed (at most `max_age`
frames) is dropped, so an object gone briefly (crossing behind another, leaving the image for a moment) comes
back with its id, and one gone longer gets a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..reading.vision import Detection


@dataclass
class TrackerConfig:
    """Tracker settings (see the vision node's tracker_* parameters)."""

    max_age: int = 30  # frames a track survives unmatched (at most; Norfair's hit_counter_max)
    min_iou: float = 0.1  # least box IoU between a detection and a track's predicted box for a match
    min_hits: int = 1  # frames a new object must be seen before it gets an id (1: at once)
    class_aware: bool = True  # only detections of the same class continue a track


class Tracker:
    """Gives `Detection.id` (a decimal string, unique for the tracker's life) to each frame's detections."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        from norfair import Detection as NorfairDetection
        from norfair import Tracker as NorfairTracker

        self.config = config or TrackerConfig()
        c = self.config
        if c.max_age < 1 or not 0.0 < c.min_iou <= 1.0 or not 1 <= c.min_hits <= c.max_age:
            raise ValueError(
                f"tracker settings out of range: max_age {c.max_age} (>= 1), min_iou {c.min_iou} "
                f"(0 < x <= 1), min_hits {c.min_hits} (1 <= x <= max_age)"
            )
        self._detection = NorfairDetection
        # Norfair's "iou" distance is 1 - IoU; a detection continues a track below distance_threshold.
        self._tracker = NorfairTracker(
            distance_function="iou",
            distance_threshold=1.0 - c.min_iou,
            hit_counter_max=c.max_age,
            initialization_delay=c.min_hits - 1,
            past_detections_length=0,
        )
        self._frame = 0

    def update(self, detections: Sequence[Detection]) -> list[Detection]:
        """Match one frame's detections to the tracks; sets each matched detection's `id` ("" while a new
        object waits for min_hits). Returns the detections."""
        self._frame += 1
        frame = self._frame
        items = []
        for i, d in enumerate(detections):
            box = np.array([[d.x_min, d.y_min], [d.x_max, d.y_max]], np.float64)
            if not (np.all(np.isfinite(box)) and d.x_max > d.x_min and d.y_max > d.y_min):
                continue
            items.append(
                self._detection(
                    points=box,
                    scores=np.full(2, max(d.confidence, 1e-3)),
                    label=d.class_index if self.config.class_aware else None,
                    data=(frame, i),
                )
            )
        for d in detections:
            d.id = ""
        for tracked in self._tracker.update(items):
            last = tracked.last_detection
            if last is None or last.data is None or last.data[0] != frame or tracked.id is None:
                continue  # not seen in this frame (coasting on its prediction)
            detections[last.data[1]].id = str(tracked.id)
        return list(detections)

    @property
    def active_ids(self) -> list[str]:
        """Ids of the tracks alive now."""
        return [str(t.id) for t in self._tracker.tracked_objects if t.id is not None]
