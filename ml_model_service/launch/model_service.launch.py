"""ML model service: `ros2 launch ml_model_service model_service.launch.py model_path:=/path/model.onnx`.

Arguments: namespace, params_file (default config/model_service.yaml), model_path, label_path,
execution_providers (e.g. "['cuda','cpu']"). For images over Fast DDS, export
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA before launching (see the README).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("ml_model_service"), "config", "model_service.yaml"])
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="parameter file"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model file, repository name or bundled name (empty: bundled SSD)"),
        DeclareLaunchArgument("label_path", default_value="", description="label file (empty: beside the model)"),
        DeclareLaunchArgument("execution_providers", default_value="['cuda', 'cpu']",
                              description="onnxruntime providers in order of preference"),
    ]
    node = Node(
        package="ml_model_service",
        executable="model_service",
        name="ml_model_service",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model_path": LaunchConfiguration("model_path"),
                "label_path": LaunchConfiguration("label_path"),
                "execution_providers": ParameterValue(LaunchConfiguration("execution_providers"), value_type=None),
            },
        ],
    )
    return LaunchDescription([*args, node])
