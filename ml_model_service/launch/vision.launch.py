"""Vision service, with its own model or with a model service:

    ros2 launch ml_model_service vision.launch.py image:=/camera/color/image_raw
    ros2 launch ml_model_service vision.launch.py image:=/camera/color/image_raw params_file:=my_vision.yaml
    ros2 launch ml_model_service vision.launch.py use_model_service:=true model_path:=efficientnet_lite0
    ros2 launch ml_model_service vision.launch.py model_service:=/ml_model_service   # one already running
    ros2 launch ml_model_service vision.launch.py use_depth:=true image:=/camera/color/image_raw \\
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info
    ros2 launch ml_model_service vision.launch.py namespace:=/robot "cameras:=[front, back]"  # one node, 2 cameras

Arguments (`ros2 launch ml_model_service vision.launch.py --show-args`):
  namespace             namespace of the nodes (default: none)
  params_file           parameter file of the vision node, and of the model service node with
                        use_model_service (default: the package's config/vision.yaml, every parameter)
  use_model_service     true: also start a model service node (ml_model_service, same namespace) and run
                        the model there; false (default): the model runs in the vision node
  model_service         node name of a model service already running, to use instead of a model in this
                        process (default: from params_file); not with use_model_service
  model_path, label_path, execution_providers
                        the model (in the model service node with use_model_service)
  image, depth, camera_info
                        topics the node's image, depth and camera_info inputs are remapped to (default:
                        image, depth, camera_info in the namespace); image/compressed follows image
  use_depth, use_compressed, confidence_threshold
                        vision parameters: true/false (1/0), a number in 0..1
  cameras               several cameras in one node: [front, back] reads front/image, back/image... in the
                        namespace (per-camera settings front.use_depth... in params_file; see docs/vision-node.md)
  use_sim_time          true: every node started takes its time from /clock (simulation, bag replay)
  managed               true: the nodes start unconfigured, for a lifecycle manager (`ros2 lifecycle set
                        /vision_service configure`, then `activate`); default false: they start active
  autostart             with managed:=true, true configures and activates them at start all the same
The nodes are started as launch_ros LifecycleNode actions: a launch file that includes this one can drive
them with launch_ros's ChangeState events and react to OnStateTransition.
A parameter argument overrides params_file only when given on the command line; otherwise the file's value
(or the node's default) holds. Values of the wrong type are refused with one line.

Images over Fast DDS need the shipped profile (README, "DDS for images"): export
FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix ml_model_service)/share/ml_model_service/config/fastdds_large_data.xml
and on Jazzy FASTRTPS_DEFAULT_PROFILES_FILE (the name its Fast DDS 2.x reads) to the same file, in every
process of the image pipeline, camera driver included. This file sets the distro's names for the nodes it
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

MODEL_ARGS = la.MODEL_ARGS
VISION_ARGS = {  # parameters of the vision node: read and checked as its parameter table says
    "use_depth": (
        la.for_param("use_depth"),
        "subscribe to depth and camera_info, publish 3D objects: true/false (default: from params_file)",
    ),
    "use_compressed": (
        la.for_param("use_compressed"),
        "subscribe to image/compressed instead of image: true/false (default: from params_file)",
    ),
    "confidence_threshold": (la.for_param("confidence_threshold"), "minimum score, 0..1 (default: from params_file)"),
    "cameras": (
        la.for_param("cameras"),
        "several cameras in one node, e.g. [front, back]: front/image -> front/detections... (default: from "
        "params_file: one camera on image)",
    ),
}
TOPIC_ARGS = {
    "image": "colour image topic",
    "depth": "depth image topic, aligned to colour (with use_depth)",
    "camera_info": "camera_info topic of the colour camera (with use_depth)",
}


def _nodes(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    share = FindPackageShare("ml_model_service").perform(context)
    model = la.overrides({n: arg(n) for n in MODEL_ARGS}, {n: c for n, (c, _) in MODEL_ARGS.items()})
    vision = la.overrides({n: arg(n) for n in VISION_ARGS}, {n: c for n, (c, _) in VISION_ARGS.items()})
    use_model_service = la.to_bool("use_model_service", arg("use_model_service") or "false")
    model_service = arg("model_service").strip()
    if use_model_service and model_service:
        raise la.LaunchArgumentError(
            f"model_service:={model_service!r} names a running model service; "
            "use_model_service:=true starts one: give one of the two"
        )
    params_file = arg("params_file") or os.path.join(share, "config", "vision.yaml")
    if not os.path.isfile(params_file):
        raise la.LaunchArgumentError(f"params_file:={params_file!r}: no such file")
    params_file = os.path.abspath(params_file)
    image = arg("image")
    remaps = [
        ("image", image),
        ("image/compressed", image.rstrip("/") + "/compressed"),
        ("depth", arg("depth")),
        ("camera_info", arg("camera_info")),
    ]
    env = la.fastdds_env(share)
    run = la.run_parameters({n: arg(n) for n in la.RUN_ARGS})
    namespace = arg("namespace")
    nodes = []
    if use_model_service:  # the user's params_file goes to both nodes (sections by node name, or /**)
        nodes.append(
            LifecycleNode(
                package="ml_model_service",
                executable="model_service",
                name="ml_model_service",
                namespace=namespace,
                output="screen",
                additional_env=env,
                parameters=[
                    os.path.join(share, "config", "model_service.yaml"),
                    params_file,
                    *([model] if model else []),
                    *([run] if run else []),
                ],
            )
        )
        own = {
            **vision,
            "model_service": "ml_model_service",
            **({"label_path": model["label_path"]} if "label_path" in model else {}),
        }
    else:
        own = {**vision, **model, **({"model_service": model_service} if model_service else {})}
    nodes.append(
        LifecycleNode(
            package="ml_model_service",
            executable="vision_service",
            name="vision_service",
            namespace=namespace,
            output="screen",
            remappings=remaps,
            additional_env=env,
            parameters=[params_file, *([own] if own else []), *([run] if run else [])],
        )
    )
    return nodes


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the nodes"),
        DeclareLaunchArgument(
            "params_file", default_value="", description="parameter file (default: the package's config/vision.yaml)"
        ),
        DeclareLaunchArgument(
            "use_model_service",
            default_value="false",
            description="true: also start a model service node and run the model there",
        ),
        DeclareLaunchArgument(
            "model_service",
            default_value="",
            description="node name of a running model service to use instead of a model in "
            "this process (default: from params_file)",
        ),
        *(
            DeclareLaunchArgument(name, default_value="", description=text)
            for name, (_, text) in {**MODEL_ARGS, **VISION_ARGS}.items()
        ),
        *(DeclareLaunchArgument(name, default_value=name, description=text) for name, text in TOPIC_ARGS.items()),
        *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in la.RUN_ARGS.items()),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes)])
