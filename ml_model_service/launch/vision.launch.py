"""Vision service, with its own model or with a model service:

    ros2 launch ml_model_service vision.launch.py image:=/camera/color/image_raw
    ros2 launch ml_model_service vision.launch.py use_model_service:=true model_path:=efficientnet_lite0
    ros2 launch ml_model_service vision.launch.py use_depth:=true image:=/camera/color/image_raw \\
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info

Arguments: namespace, params_file (default config/vision.yaml), use_model_service (also start a model
service node and use it remotely), model_path, label_path, image, depth, camera_info, use_depth,
use_compressed, confidence_threshold. For images over Fast DDS, export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ml_model_service")
    arg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the nodes"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "vision.yaml"])),
        DeclareLaunchArgument("use_model_service", default_value="false",
                              description="start a model service node and run the model there"),
        DeclareLaunchArgument("model_path", default_value="", description="model (empty: bundled SSD detector)"),
        DeclareLaunchArgument("label_path", default_value=""),
        DeclareLaunchArgument("image", default_value="image", description="colour image topic"),
        DeclareLaunchArgument("depth", default_value="depth", description="depth image topic aligned to colour"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="colour camera_info topic"),
        DeclareLaunchArgument("use_depth", default_value="false", description="publish 3D objects"),
        DeclareLaunchArgument("use_compressed", default_value="false", description="subscribe to image/compressed"),
        DeclareLaunchArgument("confidence_threshold", default_value="0.5"),
    ]
    remaps = [("image", arg("image")), ("image/compressed", [arg("image"), "/compressed"]),
              ("depth", arg("depth")), ("camera_info", arg("camera_info"))]
    common = {
        "label_path": arg("label_path"),
        "use_depth": PythonExpression(["'", arg("use_depth"), "'.lower() == 'true'"]),
        "use_compressed": PythonExpression(["'", arg("use_compressed"), "'.lower() == 'true'"]),
        "confidence_threshold": PythonExpression(["float(", arg("confidence_threshold"), ")"]),
    }
    model_service = Node(
        package="ml_model_service", executable="model_service", name="ml_model_service",
        namespace=arg("namespace"), output="screen", condition=IfCondition(arg("use_model_service")),
        parameters=[PathJoinSubstitution([share, "config", "model_service.yaml"]),
                    {"model_path": arg("model_path"), "label_path": arg("label_path")}])
    vision_remote = Node(
        package="ml_model_service", executable="vision_service", name="vision_service",
        namespace=arg("namespace"), output="screen", remappings=remaps,
        condition=IfCondition(arg("use_model_service")),
        parameters=[arg("params_file"), {**common, "model_service": "ml_model_service"}])
    vision_local = Node(
        package="ml_model_service", executable="vision_service", name="vision_service",
        namespace=arg("namespace"), output="screen", remappings=remaps,
        condition=UnlessCondition(arg("use_model_service")),
        parameters=[arg("params_file"), {**common, "model_path": arg("model_path")}])
    return LaunchDescription([*args, model_service, vision_remote, vision_local])
