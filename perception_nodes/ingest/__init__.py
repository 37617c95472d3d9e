"""Camera sources for camera_ingest: V4L2/USB, video files, image folders (no ROS)."""
