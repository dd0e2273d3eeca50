"""ML model service node:

    ros2 launch ml_model_service model_service.launch.py model_path:=/opt/models/yolov8n.onnx
    ros2 launch ml_model_service model_service.launch.py params_file:=my_model_service.yaml
    ros2 launch ml_model_service model_service.launch.py model_path:=efficientnet_lite0 execution_providers:=cpu

Arguments (`ros2 launch ml_model_service model_service.launch.py --show-args`):
  namespace            namespace of the node (default: none)
  params_file          parameter file (default: the package's config/model_service.yaml, every parameter)
  model_path           model file, model repository name or bundled name
  label_path           label file
  execution_providers  onnxruntime providers in order: cpu, cuda,cpu or "['cuda', 'cpu']"
  use_sim_time         true: the node takes its time from /clock (simulation, bag replay)
  managed              true: the node starts unconfigured, for a lifecycle manager (`ros2 lifecycle set
                       /ml_model_service configure`, then `activate`); default false: it starts active
  autostart            with managed:=true, true configures and activates it at start all the same
The node is started as a launch_ros LifecycleNode action: a launch file that includes this one can drive
it with launch_ros's ChangeState events and react to OnStateTransition.
A parameter argument overrides params_file only when given on the command line; otherwise the file's value
(or the node's default) holds. Values of the wrong type are refused with one line.

Images over Fast DDS need the shipped profile (README, "DDS for images"): export
FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix ml_model_service)/share/ml_model_service/config/fastdds_large_data.xml
and on Jazzy FASTRTPS_DEFAULT_PROFILES_FILE (the name its Fast DDS 2.x reads) to the same file, in every
process of the image pipeline, camera driver included. This file sets the distro's names for the node it
starts, to the profile the user set under either name, else the shipped one (nothing where
FASTDDS_BUILTIN_TRANSPORTS is set).
"""

import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare

from ml_model_service import launch_args as la

PARAMETER_ARGS = la.MODEL_ARGS


def _nodes(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    share = FindPackageShare("ml_model_service").perform(context)
    given = {name: arg(name) for name in PARAMETER_ARGS}
    params = {
        **la.overrides(given, {name: conv for name, (conv, _) in PARAMETER_ARGS.items()}),
        **la.run_parameters({n: arg(n) for n in la.RUN_ARGS}),
    }
    params_file = arg("params_file") or os.path.join(share, "config", "model_service.yaml")
    if not os.path.isfile(params_file):
        raise la.LaunchArgumentError(f"params_file:={params_file!r}: no such file")
    params_file = os.path.abspath(params_file)
    return [
        LifecycleNode(
            package="ml_model_service",
            executable="model_service",
            name="ml_model_service",
            namespace=arg("namespace"),
            output="screen",
            additional_env=la.fastdds_env(share),
            parameters=[params_file, params] if params else [params_file],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument(
            "params_file",
            default_value="",
            description="parameter file (default: the package's config/model_service.yaml)",
        ),
        *(
            DeclareLaunchArgument(name, default_value="", description=text)
            for name, (_, text) in PARAMETER_ARGS.items()
        ),
        *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in la.RUN_ARGS.items()),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes)])
