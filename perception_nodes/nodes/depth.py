"""depth: depth from one colour camera (mono-depth + instances, self-supervised on the
cell's sweeps).

Subscribes, matched by exact stamp: ``camera/color/image_raw`` and
``camera/color/camera_info``. Publishes ``camera/depth_mono/image_raw`` 32FC1 metres, aligned
to the colour image (same size, same header: stamp and optical frame), NaN where nothing is
known. With ``scale_mode`` ``floor_plane`` the model's relative depth is made metric per frame
from the calibrated tray floor (``floor_plane``, the same calibration as the anomaly node's)
seen inside ``workspace_polygon``; with ``none`` it stays in the model's own unit. The frame's
scale factor is in diagnostics. grasp_regions plans on it with
``depth_topic: camera/depth_mono/image_raw``.
"""

from __future__ import annotations

import time

from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.inference.depth import SCALE_MODES, MonoDepthEstimator
from perception_nodes.inference.onnx_model import resolve_model
from perception_nodes.ros.calibration import (
    SIM_CALIBRATION_CAMERA,
    calibration_camera_param,
    calibration_check,
    parse_floor_calibration,
)
from perception_nodes.ros.image_conversion import (
    ImageConversionError,
    image_to_rgb,
    numpy_to_image,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import intrinsics_from_camera_info
from perception_nodes.ros.params import Param
from perception_nodes.ros.sync import Subscriber


class DepthNode(ManagedNode):
    PROCESSES_FRAMES = True
    PARAMS = (
        Param("depth_model", "mono_depth", "monocular depth model (models/manifest.yaml)"),
        Param("scale_mode", "floor_plane", "how relative depth becomes metres",
              choices=SCALE_MODES),
        Param("floor_plane", "0,0,-1,0.945", "tray floor 'nx,ny,nz,d' in the camera optical "
              "frame from calibration (normal towards the camera, d metres)"),
        Param("workspace_polygon", "0.3058,0.7548; 0.6911,0.7548; 0.6911,0.2410; "
              "0.3058,0.2410", "where the tray floor may be seen, 'u,v; ...' as image "
              "fractions ('' = whole image)"),
        calibration_camera_param(SIM_CALIBRATION_CAMERA),
        Param("models_dir", "", "folder holding manifest.yaml ('' = the package's "
              "models: the source tree's, or share/perception/models when installed)"),
        Param("providers", "auto", "ONNX Runtime providers",
              choices=("auto", "cpu", "cuda", "tensorrt")),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("depth", **kwargs)

    def check_params(self, params: dict) -> None:
        self.plane, self.outside_floor = parse_floor_calibration(params)
        self.calibration = calibration_check(params, None)  # no measured depth to check

    def configure_io(self) -> None:
        p = self.params
        self.estimator = MonoDepthEstimator(resolve_model(p["depth_model"], p["models_dir"]),
                                            p["providers"])
        self.pub_depth = self.create_publisher(Image, "camera/depth_mono/image_raw",
                                               self.pub_qos)
        subs = [Subscriber(self, Image, "camera/color/image_raw", self.sub_qos),
                Subscriber(self, CameraInfo, "camera/color/camera_info", self.sub_qos)]
        self.sync = self.synchroniser(subs, 10)
        self.sync.registerCallback(self._on_frame)

    def _on_frame(self, image: Image, info: CameraInfo) -> None:
        if not self.should_process():
            return
        start = time.monotonic()
        self.health.count("received")
        try:
            rgb = image_to_rgb(image)
            if self.params["scale_mode"] == "none":
                depth = self.estimator.relative(rgb)
            else:
                intrinsics = intrinsics_from_camera_info(info, rgb.shape)
                self.calibration.report(self.health, intrinsics)
                depth, scale = self.estimator.metric(
                    rgb, intrinsics, self.plane, self.outside_floor.inside(rgb.shape[:2]))
                self.health.info["scale"] = f"{scale:.4f}"
        except (ImageConversionError, ValueError) as exc:
            self.drop_malformed("frame", exc)
            return
        self.pub_depth.publish(numpy_to_image(depth, "32FC1", image.header))
        self.health.published(latency_s=time.monotonic() - start)


def main(args: list[str] | None = None) -> int:
    return run_node(DepthNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
