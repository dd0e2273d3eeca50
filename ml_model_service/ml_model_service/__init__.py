"""ML model service and vision service for ROS 2.

`ml_model_service.core` is ROS-free (numpy, backends, decoding, geometry); `ml_model_service.ros` holds
the thin rclpy nodes.
"""
