"""The vision node's publishers: one frame's Results → vision_msgs, always with the colour frame's header.

QoS as ROS convention has it, set explicitly (never the RMW's "system default", which Fast DDS makes
transient-local): results are reliable and volatile (a late subscriber never sees a stale result; a
best-effort subscriber matches too); only `label_info` is latched. An empty `objects` message means
"nothing found"; no message means "no 3D for this frame". The debug image is drawn only while someone
subscribes to it. Matched events on every output tell the node when anybody listens (image_pipeline's
subscribe-while-matched), with no timer.

Segmentation models add `instance_masks` (mono16, the colour image's size and header; pixel = index + 1 of
the detection in that frame's `detections`, 0 = background), published with every detections message while
`publish_masks` is on and someone subscribes. 3D objects add `object_markers` (MarkerArray: DELETEALL, then
a CUBE and a TEXT label per object, ids = tracking ids when tracking), published with every objects message
while `publish_markers` is on. Pose models add `keypoints` (KeypointsArray, the detections' header, one entry per
detection in the same order; 3D points with depth), published with every detections message. Segmenters publish
`segmentation` (each pixel's class index: mono8 for up to 256 classes, else mono16; the colour image's size and
header) with every frame, the class overlay on `debug_image`, and with depth `segmentation_points` (PointCloud2:
x, y, z, rgb, class; the classes `classes` keeps; in the camera's frame or `target_frame`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray, Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from ml_model_service_interfaces.msg import KeypointsArray

from ...core.frames.pipeline import Results
from ...core.frames.visualize import colour_for, draw, overlay_classes
from ...core.reading.vision import VisionModel
from .. import conversions

LATCHED = QoSProfile(
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
)
RESULTS = QoSProfile(
    depth=10,
    durability=DurabilityPolicy.VOLATILE,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
)


class Outputs:
    """Publishers of detections, classifications, label_info, debug_image, objects and object_points."""

    def __init__(
        self,
        node: Node,
        on_listeners_changed: Callable[[], None],
        prefix: str = "",
        label_info: bool = True,
        results: bool = True,
    ) -> None:
        """`prefix`: "<camera>/" for one of several cameras, whose `label_info` the node publishes once (an
        Outputs with `results` False: label_info only)."""
        self.node = node
        events = PublisherEventCallbacks(matched=lambda _info: on_listeners_changed())

        def make(msg_type, topic):
            if not results:  # label_info only: never called to publish results
                return None
            return node.create_publisher(msg_type, prefix + topic, RESULTS, event_callbacks=events)

        self.detections = make(Detection2DArray, "detections")
        self.classifications = make(Classification, "classifications")
        self.debug = make(Image, "debug_image")
        self.objects = make(Detection3DArray, "objects")
        self.points = make(PointCloud2, "object_points")
        self.masks = make(Image, "instance_masks")
        self.markers = make(MarkerArray, "object_markers")
        self.keypoints = make(KeypointsArray, "keypoints")
        self.segmentation = make(Image, "segmentation")
        self.segmentation_points = make(PointCloud2, "segmentation_points")
        self.label_info = node.create_publisher(LabelInfo, "label_info", LATCHED) if label_info else None
        self._listened = [
            self.detections,
            self.classifications,
            self.debug,
            self.objects,
            self.points,
            self.masks,
            self.markers,
            self.keypoints,
            self.segmentation,
            self.segmentation_points,
        ]
        self._listened = [pub for pub in self._listened if pub is not None]

    def destroy(self) -> None:
        """Destroy every publisher (lifecycle cleanup)."""
        for pub in (*self._listened, self.label_info):
            if pub is not None:
                self.node.destroy_publisher(pub)
        self._listened = []

    def listened(self) -> bool:
        """Whether anybody subscribes to a result topic."""
        return any(pub.get_subscription_count() > 0 for pub in self._listened)

    def publish_labels(self, vision: VisionModel, threshold: float) -> None:
        if self.label_info is None:
            return
        header = Header(stamp=self.node.get_clock().now().to_msg())
        self.label_info.publish(conversions.label_info_msg(vision.labels, header, threshold))

    def publish(
        self,
        header: Header,
        r: Results,
        vision: VisionModel | None,
        names: bool,
        debug: bool,
        masks: bool = True,
        markers: bool = True,
    ) -> None:
        """Everything one frame gave (header = the colour frame's)."""
        if vision is not None and vision.detections_supported:
            self.detections.publish(conversions.detections_to_msg(r.detections, header, names))
            if masks and getattr(vision, "segments", False) and self.masks.get_subscription_count() > 0:
                self.masks.publish(conversions.instance_masks_to_msg(r.instance_image(), header))
            if vision.keypoint_shape is not None:
                msg = conversions.keypoints_to_msg(r.detections, header, vision.keypoint_names, r.keypoints_3d)
                self.keypoints.publish(msg)
        if vision is not None and vision.classifications_supported:
            self.classifications.publish(conversions.classifications_to_msg(r.classifications, header, names))
        where = Header(stamp=header.stamp, frame_id=r.objects_frame or header.frame_id)  # 3D: target_frame
        if r.segmentation is not None:
            self.segmentation.publish(conversions.class_map_to_msg(r.segmentation.classes, header))
        if r.segmentation_points is not None:
            cloud = r.segmentation_points
            msg = conversions.cloud_to_msg(cloud.points, cloud.colours, cloud.classes, where, "class")
            self.segmentation_points.publish(msg)
        if r.objects is not None:
            self.objects.publish(conversions.detections3d_to_msg(r.objects, where, names))
            self.points.publish(combined_cloud(r.objects, where))
            if markers:
                self.markers.publish(conversions.markers_to_msg(r.objects, where, names, colour_for))
        if debug and self.debug.get_subscription_count() > 0:
            drawn = draw(r.rgb, r.detections, r.classifications)
            if r.segmentation is not None:
                drawn = overlay_classes(drawn, r.segmentation.classes)
            self.debug.publish(conversions.rgb_to_image(drawn, header))


def combined_cloud(objects: list, header: Header) -> PointCloud2:
    """All objects' points in one cloud; field `object` = the object's position in `objects`."""
    if not objects:
        return conversions.cloud_to_msg(np.zeros((0, 3), np.float32), None, None, header)
    points = np.concatenate([o.points for o in objects])
    colours = np.concatenate([o.colours for o in objects])
    ids = np.concatenate([np.full(len(o.points), o.index, np.uint32) for o in objects])
    return conversions.cloud_to_msg(points, colours, ids, header)
