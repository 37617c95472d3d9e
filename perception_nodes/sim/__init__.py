"""The simulated picking cell (pybullet). Imports core, never ROS."""
