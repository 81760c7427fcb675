"""Start the mnm fusion node: `ros2 launch mnm_ros fuse.launch.py input_topic:=/camera/image_raw`.

Arguments: namespace (default mnm → /mnm/pseudo_ir, /mnm/fused), input_topic, config (parameter file,
default the installed config/fuse.yaml), backend, text_encoder, use_sim_time, large_data. Two cameras
are two instances in two namespaces; see launch/two_cameras.launch.py.

large_data:=true (default) points Fast DDS at the shipped config/fastdds_large_data.xml (a 16 MB
shared-memory segment) for every process this launch starts, unless FASTDDS_DEFAULT_PROFILES_FILE is
already set; the camera driver must use it too (docs/ros.md).
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("mnm_ros")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="mnm", description="namespace of the node and its topics"),
        DeclareLaunchArgument("input_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image or CompressedImage) remapped to `image`"),
        DeclareLaunchArgument("config", default_value=PathJoinSubstitution([share, "config", "fuse.yaml"]),
                              description="parameter file"),
        DeclareLaunchArgument("backend", default_value="onnxruntime",
                              description="inference backend: onnxruntime, torch or tensorrt"),
        DeclareLaunchArgument("text_encoder", default_value="minilm",
                              description="text encoder: minilm, hf-causal-lm, openai or none"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replays)"),
        DeclareLaunchArgument("large_data", default_value="true",
                              description="apply the shipped Fast DDS large-image profile"),
    ]
    profile = PathJoinSubstitution([share, "config", "fastdds_large_data.xml"])
    unset = PythonExpression([
        "'", LaunchConfiguration("large_data"), "'.lower() == 'true' and not '",
        EnvironmentVariable(PROFILE_VARIABLES[0], default_value=""), "'"])
    environment = [SetEnvironmentVariable(name, profile, condition=IfCondition(unset)) for name in PROFILE_VARIABLES]
    node = Node(
        package="mnm_ros",
        executable="fuse_node",
        namespace=LaunchConfiguration("namespace"),
        remappings=[("image", LaunchConfiguration("input_topic"))],
        parameters=[
            LaunchConfiguration("config"),
            {
                "pipeline.backend": LaunchConfiguration("backend"),
                "text.encoder": LaunchConfiguration("text_encoder"),
                "use_sim_time": LaunchConfiguration("use_sim_time"),
            },
        ],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, *environment, node])
