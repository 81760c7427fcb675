"""Two cameras, two fusion nodes: `ros2 launch mnm_ros two_cameras.launch.py`.

Includes fuse.launch.py twice, in namespaces left/ and right/ (→ /left/pseudo_ir, /right/fused, ...),
each remapped to its own camera topic; both share the parameter file and /diagnostics.
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    fuse = PathJoinSubstitution([FindPackageShare("mnm_ros"), "launch", "fuse.launch.py"])
    cameras = {"left": "/left/image_raw", "right": "/right/image_raw"}
    arguments = [DeclareLaunchArgument(f"{name}_topic", default_value=topic, description=f"{name} camera topic")
                 for name, topic in cameras.items()]
    arguments.append(DeclareLaunchArgument("backend", default_value="",
                                           description="inference backend (default: the parameter file's)"))
    includes = [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(fuse),
            launch_arguments={"namespace": name, "input_topic": LaunchConfiguration(f"{name}_topic"),
                              "backend": LaunchConfiguration("backend")}.items(),
        )
        for name in cameras
    ]
    return LaunchDescription([*arguments, *includes])
