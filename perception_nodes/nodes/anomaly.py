"""anomaly: foreign objects in the bin as instance masks (UGainS, on our cell).

Subscribes, matched by exact stamp: ``camera/color/image_raw``, ``camera/depth/image_raw``
(32FC1 m or 16UC1 mm) and ``camera/color/camera_info``. Publishes with the image's header:
``anomaly/instance_labels`` mono16 (0 none; instances scoring at least ``min_score``, best
first), ``anomaly/score`` 32FC1 (the refined pixel score: pixel plus instance scores; NaN in
the ignore region), and ``anomaly/alert`` DiagnosticArray, one status per frame: WARN with
``count``, ``largest_area_px`` and ``max_score`` when a foreign object is in the bin, OK
otherwise. grasp_regions reads ``anomaly/instance_labels`` and never puts a cup on one.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.anomaly import SAMPLERS, AnomalyParams
from perception_nodes.core.confidence_masks import masks_to_labels
from perception_nodes.inference.anomaly import PROMPT_METHODS, AnomalyDetector
from perception_nodes.inference.onnx_model import resolve_model
from perception_nodes.ros.calibration import (
    SIM_CALIBRATION_CAMERA,
    calibration_camera_param,
    calibration_check,
    parse_floor_calibration,
)
from perception_nodes.ros.image_conversion import (
    ImageConversionError,
    image_to_depth_m,
    image_to_rgb,
    numpy_to_image,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import intrinsics_from_camera_info, stamp_ns
from perception_nodes.ros.params import Param
from perception_nodes.ros.sync import Subscriber


class AnomalyNode(ManagedNode):
    PROCESSES_FRAMES = True
    PARAMS = (
        Param("segmenter_model", "anomaly_segmenter", "segmentation model trained with "
              "outlier exposure (models/manifest.yaml)"),
        Param("prompt_model", "prompt_segmenter", "point-prompted mask model"),
        Param("prompt_method", "model", "prompt segmenter", choices=PROMPT_METHODS),
        Param("sampler", "fps", "how prompts are drawn from the score", choices=SAMPLERS),
        Param("num_points", 50, "prompts per frame", min=1, max=1024),
        Param("num_samples", 4, "latent samples that claim pixels", min=0, max=64),
        Param("threshold", 0.5, "pixel score that makes a pixel a prompt candidate",
              min=0.0, max=1.0),
        Param("mask_threshold", 0.3, "prompt-model probability that puts a pixel in a mask",
              min=0.0, max=1.0),
        Param("recentre", 1, "times each prompt moves to its mask's centre and is segmented "
              "again", min=0, max=3),
        Param("nms_iou", 0.5, "mask IoU above which the lower-scored mask goes", min=0.0,
              max=1.0),
        Param("min_score", 0.35, "instances scoring below are neither published nor alerted",
              min=0.0, max=1.0),
        Param("floor_plane", "0,0,-1,0.945", "tray floor 'nx,ny,nz,d' in the camera optical "
              "frame from calibration (normal towards the camera)"),
        Param("workspace_polygon", "", "tray floor 'u,v; ...' as image fractions; outside it "
              "is ignored ('' = whole image)"),
        calibration_camera_param(SIM_CALIBRATION_CAMERA),
        Param("models_dir", "", "folder holding manifest.yaml ('' = the package's "
              "models: the source tree's, or share/perception/models when installed)"),
        Param("providers", "auto", "ONNX Runtime providers",
              choices=("auto", "cpu", "cuda", "tensorrt")),
        Param("seed", 0, "seed of latent draws and prompt sampling", min=0, max=2**31 - 1),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__("anomaly", **kwargs)

    def check_params(self, params: dict) -> None:
        self.plane, self.outside_workspace = parse_floor_calibration(params)
        self.calibration = calibration_check(params, self.plane)

    def configure_io(self) -> None:
        p = self.params
        prompt = resolve_model(p["prompt_model"], p["models_dir"]) \
            if p["prompt_method"] == "model" else None
        self.detector = AnomalyDetector(
            resolve_model(p["segmenter_model"], p["models_dir"]), prompt,
            AnomalyParams(p["threshold"], p["num_points"], p["sampler"],
                          mask_threshold=p["mask_threshold"], nms_iou=p["nms_iou"],
                          recentre=p["recentre"]), p["num_samples"], p["providers"], p["seed"],
            p["prompt_method"])
        q = self.pub_qos
        self.pub_labels = self.create_publisher(Image, "anomaly/instance_labels", q)
        self.pub_score = self.create_publisher(Image, "anomaly/score", q)
        self.pub_alert = self.create_publisher(DiagnosticArray, "anomaly/alert", q)
        subs = [Subscriber(self, Image, "camera/color/image_raw", self.sub_qos),
                Subscriber(self, Image, "camera/depth/image_raw", self.sub_qos),
                Subscriber(self, CameraInfo, "camera/color/camera_info", self.sub_qos)]
        self.sync = self.synchroniser(subs, 10)
        self.sync.registerCallback(self._on_frame)

    def _on_frame(self, image: Image, depth_msg: Image, info: CameraInfo) -> None:
        if not self.should_process():
            return
        start = time.monotonic()
        self.health.count("received")
        try:
            rgb = image_to_rgb(image)
            depth = image_to_depth_m(depth_msg, rgb.shape)
            intrinsics = intrinsics_from_camera_info(info, rgb.shape)
            outside = self.outside_workspace(rgb.shape[:2])
            self.calibration.report(self.health, intrinsics, depth, ~outside)
            frame = self.detector.detect(rgb, depth, intrinsics, self.plane, outside,
                                         stamp_ns(image.header.stamp))
        except (ImageConversionError, ValueError) as exc:
            self.drop_malformed("frame", exc)
            return
        inst = frame.instances
        keep = inst.scores >= self.params["min_score"]
        masks, scores = inst.masks[keep], inst.scores[keep]
        labels = masks_to_labels(masks, scores) if len(masks) else \
            np.zeros(rgb.shape[:2], np.uint16)
        self.pub_labels.publish(numpy_to_image(labels.astype(np.uint16), "mono16",
                                               image.header))
        self.pub_score.publish(numpy_to_image(inst.refined, "32FC1", image.header))
        self.pub_alert.publish(self._alert(image.header, masks, scores))
        self.health.info["anomalies"] = str(len(masks))
        self.health.published(latency_s=time.monotonic() - start)

    def _alert(self, header, masks: np.ndarray, scores: np.ndarray) -> DiagnosticArray:
        count = len(masks)
        largest = int(masks.reshape(count, -1).sum(1).max()) if count else 0
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if count else DiagnosticStatus.OK,
            name=f"{self.get_name()}: foreign objects",
            message=f"{count} foreign object(s) in the bin" if count else "bin clear",
            hardware_id=header.frame_id,
            values=[KeyValue(key="count", value=str(count)),
                    KeyValue(key="largest_area_px", value=str(largest)),
                    KeyValue(key="max_score",
                             value=f"{float(scores.max()) if count else 0.0:.3f}")])
        return DiagnosticArray(header=header, status=[status])


def main(args: list[str] | None = None) -> int:
    return run_node(AnomalyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
