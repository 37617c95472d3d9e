"""perception: a ROS 2 perception stack for robotic bin-picking cells."""

__version__ = "0.1.0"
