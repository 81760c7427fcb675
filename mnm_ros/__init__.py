"""ROS 2 layer of mnm: the fusion node (`fuse_node`), message conversions, QoS and the `mnm demo` command.

Importing this package does not import rclpy; the modules that need it import it themselves.
"""
