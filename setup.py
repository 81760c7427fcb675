"""mnm_ros: ament_python package holding the mnm_core library and the mnm_ros ROS 2 layer."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mnm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["mnm_core", "mnm_core.*", "mnm_ros", "mnm_ros.*"]),
    package_data={"mnm_core": ["weights/*.safetensors", "weights/*.int8.onnx"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
    ],
    python_requires=">=3.10",
    zip_safe=False,
    maintainer="mnm developers",
    maintainer_email="mnm@example.com",
    description="Pseudo-infrared inference and IR-visible fusion from an RGB camera (ROS 2)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "mnm = mnm_core.cli:main",
            "fuse_node = mnm_ros.fuse_node:main",
        ],
        # `mnm` subcommands: each layer lists its own command modules (mnm_core/cli.py)
        "mnm.commands": [  # mnm_core's own commands are built in (mnm_core.commands.COMMANDS)
            "ros = mnm_ros.commands:COMMANDS",
        ],
    },
)
