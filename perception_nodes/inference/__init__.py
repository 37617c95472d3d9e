"""ONNX Runtime inference shared by the nodes (no rclpy, no torch)."""
