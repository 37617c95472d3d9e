"""Launch perception's nodes on a ROS 2 install: `ros2 launch perception bringup.launch.py`.

Reads the node list and parameters from config/perception.yaml (or `config:=FILE`), the same
file `perception bringup` uses. Any parameter can be overridden per node with the standard
`--ros-args` mechanism or by passing another parameter file.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from perception_nodes.bringup import load_config


def _nodes(context):
    config = LaunchConfiguration("config").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    names, _ = load_config(config)  # `/**/perception_bringup` or `perception_bringup`
    only = LaunchConfiguration("nodes").perform(context)
    if only:
        names = [n for n in only.split(",") if n]
    respawn = LaunchConfiguration("respawn").perform(context).lower() == "true"
    cell = LaunchConfiguration("cell").perform(context)
    parameters = [config, cell] if cell else [config]  # the cell file overlays the config
    # a node whose watchdog found it stalled exits with status 3 (and a crashed one
    # non-zero): launch starts it again, the supervisor of separate processes
    return [
        Node(package="perception", executable=name, name=name, namespace=namespace,
             parameters=parameters, output="screen", emulate_tty=True, respawn=respawn,
             respawn_delay=2.0)
        for name in names
    ]


def generate_launch_description() -> LaunchDescription:
    default_config = str(Path(get_package_share_directory("perception")) / "config"
                         / "perception.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config,
                              description="parameter file (node list + parameters)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node and topic (one per cell)"),
        DeclareLaunchArgument("nodes", default_value="",
                              description="comma-separated subset of nodes to start"),
        DeclareLaunchArgument("cell", default_value="",
                              description="cell file of `perception calibrate` (floor plane, "
                                          "workspace), overlaid on config"),
        DeclareLaunchArgument("respawn", default_value="true",
                              description="restart a node process that exits (a crash, or "
                                          "its watchdog ending a stalled node)"),
        OpaqueFunction(function=_nodes),
    ])
