"""segmentation: instance masks from a distributional (latent) model (Latent-MaskRCNN), or fast
superpixel instances (superpixel one-shot, ``mode: superpixel``).

Subscribes ``camera/color/image_raw``, and with it, matched by stamp,
``camera/depth/image_raw`` and ``camera/color/camera_info`` when the mode reads geometry
(``geometric``, or a model that reads colour and height above the calibrated floor: RGB-H).
Publishes, each with the input image's header:
``segmentation/instance_labels`` mono16 (0 none), ``segmentation/confidence`` 32FC1 (share
of latent samples that agree with the published label at each pixel; 1.0 where the mode
has a single hypothesis), ``segmentation/instance_scores`` 32FC1 of size 1 x N (score of
label i + 1 at column i), ``segmentation/overlay`` rgb8 for people, and
``segmentation/sample_labels``: in mode ``confidence_mask`` 16UC(k) on the model's output
grid (the model's input size / 4, e.g. 80x60 for latent_segmenter's 320x240, whatever the
image size; channel g = latent sample g's labels), in the other modes a 1 x 1 zero 16UC1
(no samples: the grasp planner's double-pick risk is 0). Every frame gets all five
(four without the overlay), so a consumer's exact-stamp synchroniser never waits in vain.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from perception_nodes.core.geometric import GeometricParams
from perception_nodes.core.overlay import draw_label_overlay
from perception_nodes.inference.geometric import GeometricSegmenter, segment_rgbd
from perception_nodes.inference.onnx_model import ModelError, resolve_model, sha256_of
from perception_nodes.inference.segmenter import (
    DEFAULT_MODELS,
    MODES,
    ModeSegmenter,
    Segmentation,
    model_kind,
)
from perception_nodes.inference.superpixel import TUNED_CENTRE_THRESHOLD
from perception_nodes.ros.calibration import (
    calibration_camera_param,
    calibration_check,
    parse_floor_calibration,
)
from perception_nodes.ros.image_conversion import (
    image_to_depth_m,
    image_to_rgb,
    numpy_to_image,
)
from perception_nodes.ros.managed_node import ManagedNode, run_node
from perception_nodes.ros.messages import intrinsics_from_camera_info
from perception_nodes.ros.params import Param, ParameterValueError
from perception_nodes.ros.sync import Subscriber

# sample_labels of a mode without latent samples: (1, 1, 1), zero
NO_SAMPLES = np.zeros((1, 1, 1), np.uint16)


class SegmentationNode(ManagedNode):
    PROCESSES_FRAMES = True
    PARAMS = (
        Param("mode", "confidence_mask", "how instances are formed: from the model, or "
              "geometric (training-free, from depth and the calibrated floor)",
              choices=(*MODES, "superpixel", "geometric")),
        Param("confidence_p", 0.9, "confidence requirement p of confidence masks", min=0.05,
              max=1.0),
        Param("num_samples", 8, "latent samples per image (confidence_mask, union_nms)",
              min=1, max=64),
        Param("score_threshold", 0.3, "instances scoring below are not published (latent "
              "modes; superpixel instances are gated by centre_threshold)", min=0.0, max=1.0),
        Param("model", DEFAULT_MODELS["latent"], "model name in models/manifest.yaml"),
        Param("baseline_model", DEFAULT_MODELS["baseline"], "model name used in mode baseline"),
        Param("superpixel_model", DEFAULT_MODELS["superpixel"],
              "model name used in mode superpixel (superpixel one-shot)"),
        Param("centre_threshold", TUNED_CENTRE_THRESHOLD,
              "mode superpixel: centre confidence that makes a centre", min=0.01, max=0.99),
        Param("models_dir", "", "folder holding manifest.yaml ('' = the package's "
              "models: the source tree's, or share/perception/models when installed)"),
        Param("providers", "auto", "ONNX Runtime providers",
              choices=("auto", "cpu", "cuda", "tensorrt")),
        Param("seed", 0, "seed of the latent draws (replays give identical masks)", min=0,
              max=2**31 - 1),
        Param("threads", 0, "ONNX Runtime intra-op threads (0 = one per core); fewer leave "
              "cores to the nodes beside it", min=0, max=256),
        Param("publish_overlay", True, "publish segmentation/overlay"),
        Param("floor_plane", "", "mode geometric and RGB-H models: the bin floor "
              "'nx,ny,nz,d' in the camera optical frame from calibration ('' = fitted to "
              "each frame)"),
        Param("workspace_polygon", "", "mode geometric: the bin floor 'u,v; ...' as image "
              "fractions from calibration; nothing outside it is an item ('' = whole image)"),
        Param("min_height_m", GeometricParams().min_height_m, "mode geometric: what stands "
              "less than this above the floor is floor (m)", min=0.0, max=0.2),
        calibration_camera_param(),
    )

    # a model version is swapped in between frames (apply_live), not by re-configuring
    LIVE_PARAMS = frozenset({"model", "baseline_model", "superpixel_model"})

    def check_params(self, params: dict) -> None:
        self.floor, self.workspace = parse_floor_calibration(params, optional_plane=True)
        self.calibration = calibration_check(params, self.floor)

    def __init__(self, **kwargs) -> None:
        super().__init__("segmentation", **kwargs)

    def configure_io(self) -> None:
        p = self.params
        q = self.pub_qos
        self.pub_labels = self.create_publisher(Image, "segmentation/instance_labels", q)
        self.pub_conf = self.create_publisher(Image, "segmentation/confidence", q)
        self.pub_scores = self.create_publisher(Image, "segmentation/instance_scores", q)
        self.pub_overlay = self.create_publisher(Image, "segmentation/overlay", q)
        self.pub_samples = self.create_publisher(Image, "segmentation/sample_labels", q)
        self.health.info.update(mode=p["mode"])
        self.runner = self.geometric = None
        self.runner_lock = threading.Lock()  # a model swap waits for the frame in progress
        if p["mode"] == "geometric":
            self.geometric = GeometricSegmenter(
                self.floor, self.workspace,
                replace(GeometricParams(), min_height_m=p["min_height_m"]), p["seed"])
            self.get_logger().info("mode geometric (no model)")
        else:
            name = self._model_name(p)
            runner, path = self._load(name, p)
            self._serve(runner, name, path)
            self.get_logger().info(f"model {name} ({path}) on {self.runner.provider}, "
                                   f"mode {p['mode']}, reads "
                                   f"{'RGB-D' if self.runner.needs_height else 'colour'}")
        if self.runner is not None and not self.runner.needs_height:
            self.create_subscription(Image, "camera/color/image_raw", self._on_frame,
                                     self.sub_qos)
            return
        # geometry: the frame's depth, matched to its colour by stamp
        subs = [Subscriber(self, Image, "camera/color/image_raw", self.sub_qos),
                Subscriber(self, Image, "camera/depth/image_raw", self.sub_qos),
                Subscriber(self, CameraInfo, "camera/color/camera_info", self.sub_qos)]
        self.synchroniser(subs, 10).registerCallback(self._on_frame)
        self.get_logger().info(f"floor plane {p['floor_plane'] or 'fitted per frame'}")

    @staticmethod
    def _model_name(params: dict) -> str:
        """The model parameter the mode reads."""
        return {"baseline": params["baseline_model"], "superpixel": params["superpixel_model"],
                "latent": params["model"]}[model_kind(params["mode"])]

    def _load(self, name: str, p: dict) -> tuple[ModeSegmenter, Path]:
        """The mode's segmenter on model ``name`` (sha256 checked against the manifest)."""
        path = resolve_model(name, p["models_dir"])
        return ModeSegmenter(p["mode"], path, p["providers"], p["seed"], p["threads"],
                             p["num_samples"], p["confidence_p"], p["score_threshold"],
                             p["centre_threshold"]), path

    def _serve(self, runner: ModeSegmenter, name: str, path: Path) -> None:
        """Make ``runner`` the serving segmenter (between two frames) and say so."""
        with self.runner_lock:
            old, self.runner = self.runner, runner
        if old is not None:
            old.close()
        self.health.info.update(model=name, model_sha256=sha256_of(path)[:16],
                                provider=runner.provider)

    def apply_live(self, changes: dict, params: dict) -> None:
        """A new model version, loaded beside the serving one and swapped in between two
        frames; a file that fails its hash or does not load is refused and the old model
        keeps serving (a rollback is setting the previous version)."""
        name = self._model_name(params)
        if self.runner is None or name == self._model_name(self.params):
            return
        serving = f"still serving {self._model_name(self.params)!r}"
        try:
            runner, path = self._load(name, params)
        except (ModelError, ValueError, OSError) as exc:
            raise ParameterValueError(f"model {name!r} refused, {serving}: {exc}") from exc
        if runner.needs_height != self.runner.needs_height:
            runner.close()
            raise ParameterValueError(f"model {name!r} reads other inputs than the serving "
                                      f"one (colour vs colour and depth), {serving}: set it "
                                      "with the node inactive or change mode")
        self._serve(runner, name, path)
        self.health.count("model_swaps")
        self.get_logger().info(f"now serving model {name} ({path})")

    def release_io(self) -> None:
        if getattr(self, "runner", None) is not None:
            self.runner.close()

    def _on_frame(self, msg: Image, depth_msg: Image | None = None,
                  info: CameraInfo | None = None) -> None:
        """A colour image (colour models), or an RGB-D frame matched by stamp (geometric
        mode and RGB-H models: height above the calibrated floor)."""
        if not self.should_process():
            return
        start = time.monotonic()
        self.health.count("received")
        try:
            rgb = image_to_rgb(msg)
            depth = intrinsics = None
            if depth_msg is not None:
                depth = image_to_depth_m(depth_msg, rgb.shape)
                intrinsics = intrinsics_from_camera_info(info, rgb.shape)
                self.calibration.report(self.health, intrinsics, depth,
                                        self.workspace.inside(rgb.shape[:2]))
            with self.runner_lock:  # one model per frame, even across a swap
                out = segment_rgbd(self.runner or self.geometric, rgb, depth, intrinsics,
                                   self.floor, self.params["seed"])
        except ValueError as exc:  # ImageConversionError included
            self.drop_malformed("frame", exc)
            return
        self._publish(msg.header, rgb, out, start)

    def _publish(self, header, rgb: np.ndarray, out: Segmentation, start: float) -> None:
        """The five outputs of one frame, each with the input image's header."""
        p = self.params
        labels, confidence, scores = out.labels, out.confidence, out.scores
        samples = NO_SAMPLES if out.samples is None else \
            np.ascontiguousarray(out.samples.transpose(1, 2, 0))
        k = samples.shape[2]
        self.pub_samples.publish(numpy_to_image(samples[:, :, 0] if k == 1 else samples,
                                                f"16UC{k}", header))
        self.pub_labels.publish(numpy_to_image(labels, "mono16", header))
        self.pub_conf.publish(numpy_to_image(confidence, "32FC1", header))
        row = scores.astype(np.float32)[None] if len(scores) else np.zeros((1, 1), np.float32)
        self.pub_scores.publish(numpy_to_image(row, "32FC1", header))
        if p["publish_overlay"]:
            self.pub_overlay.publish(numpy_to_image(draw_label_overlay(rgb, labels), "rgb8",
                                                    header))
        self.health.published(latency_s=time.monotonic() - start)


def main(args: list[str] | None = None) -> int:
    return run_node(SegmentationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
