"""Start the mnm fusion node: `ros2 launch mnm_ros fuse.launch.py input_topic:=/camera/image_raw`.

Arguments: namespace (default mnm → /mnm/pseudo_ir, /mnm/fused), input_topic, config (parameter file,
default the installed config/fuse.yaml), backend, text_encoder, use_sim_time, large_data. backend,
text_encoder and use_sim_time are empty by default, which keeps the parameter file's value; given, they
override it (checked like a parameter set: a bad value stops the launch with the reason). Two cameras
are two instances in two namespaces; see launch/two_cameras.launch.py.

large_data:=true (default) points Fast DDS at the shipped config/fastdds_large_data.xml for every process
this launch starts, unless a profile file is already set in the environment; the camera driver must use
it too (docs/ros.md).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from mnm_ros.params import LAUNCH_ARGUMENTS, launch_overrides
from mnm_ros.qos import large_data_environment


def _node(context) -> list:
    """The node, and the Fast DDS profile variables, from the launch arguments' resolved values."""
    value = {name: LaunchConfiguration(name).perform(context) for name in (*LAUNCH_ARGUMENTS, "large_data")}
    actions = []
    if value["large_data"].strip().lower() == "true":
        environment = dict(context.environment)
        changed = {k: v for k, v in large_data_environment(environment).items() if environment.get(k) != v}
        actions += [SetEnvironmentVariable(name, profile) for name, profile in changed.items()]
    actions.append(Node(
        package="mnm_ros",
        executable="fuse_node",
        namespace=LaunchConfiguration("namespace"),
        remappings=[("image", LaunchConfiguration("input_topic"))],
        parameters=[LaunchConfiguration("config"), launch_overrides(value)],
        output="screen",
        emulate_tty=True,
    ))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("mnm_ros")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="mnm", description="namespace of the node and its topics"),
        DeclareLaunchArgument("input_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image or CompressedImage) remapped to `image`"),
        DeclareLaunchArgument("config", default_value=PathJoinSubstitution([share, "config", "fuse.yaml"]),
                              description="parameter file"),
        DeclareLaunchArgument("backend", default_value="",
                              description="inference backend: onnxruntime, torch or tensorrt "
                                          "(default: pipeline.backend of the parameter file)"),
        DeclareLaunchArgument("text_encoder", default_value="",
                              description="text encoder: minilm, hf-causal-lm, openai or none "
                                          "(default: text.encoder of the parameter file)"),
        DeclareLaunchArgument("use_sim_time", default_value="",
                              description="true: use /clock (bag replays); default: the parameter file's"),
        DeclareLaunchArgument("large_data", default_value="true",
                              description="apply the shipped Fast DDS large-image profile"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])
