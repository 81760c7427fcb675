"""`mnm` subcommands that need ROS 2 (rclpy is imported inside `run`), registered under the `mnm.commands`
entry-point group (setup.py), where mnm_core's CLI discovers them."""

from mnm_ros.commands import bag_play, demo, node_bench, replay_bench

COMMANDS = (bag_play, demo, node_bench, replay_bench)
"""mnm_ros's command modules, in the order `mnm --help` lists them."""
