"""Every node of the package: name -> (module, class). Used by bringup, the CLI and launch."""

from __future__ import annotations

import importlib

NODES: dict[str, tuple[str, str]] = {
    "sim_cell": ("perception_nodes.nodes.sim_cell", "SimCellNode"),
    "camera_ingest": ("perception_nodes.nodes.camera_ingest", "CameraIngestNode"),
    "pick_client": ("perception_nodes.nodes.pick_client", "PickClientNode"),
    "segmentation": ("perception_nodes.nodes.segmentation", "SegmentationNode"),
    "grasp_regions": ("perception_nodes.nodes.grasp_regions", "GraspRegionsNode"),
    "grasp_capture": ("perception_nodes.nodes.grasp_capture", "GraspCaptureNode"),
    "anomaly": ("perception_nodes.nodes.anomaly", "AnomalyNode"),
    "depth": ("perception_nodes.nodes.depth", "DepthNode"),
}


def node_class(name: str) -> type:
    """The node class registered as ``name``; KeyError lists the known names."""
    if name not in NODES:
        raise KeyError(f"unknown node {name!r}; known: {sorted(NODES)}")
    module, cls = NODES[name]
    return getattr(importlib.import_module(module), cls)
