"""`mnm` subcommands that need ROS 2 (rclpy is imported inside `run`)."""
