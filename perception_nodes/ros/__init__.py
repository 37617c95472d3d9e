"""The only package that knows ROS messages: conversions, QoS, sync, diagnostics, node base."""
