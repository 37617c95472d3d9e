"""Algorithms on numpy arrays. No rclpy, no torch: see conventions.py for units and dtypes."""
