"""`perception picks`: the running stack picks N times in the simulated cell, counted from
the arm's reports only (grasp self-supervision Sec. VI's closed loop on our cell).

    perception picks --picks 300 --set sim_cell.look:=novel sim_cell.item_split:=test \
        grasp_capture.dataset_dir:=runs/adapt/cell_grasps --out runs/adapt/before.json
    perception picks --picks 300 --swap-model latent_segmenter@v2 --set \
        segmentation.models_dir:=runs/adapt/store segmentation.model:=latent_segmenter@v1 ...

The configured stack runs as ``perception bringup`` runs it (sim_cell, camera_ingest,
segmentation, grasp_regions, pick_client, grasp_capture); a probe node reads
``arm/pick_outcome``. With ``--swap-model`` the probe sets the segmentation node's ``model``
parameter through the ROS parameter service once the stack publishes (as ``ros2 param set``
would), and only the picks made after the swap are counted. Outcomes: success = exactly one
item lifted; double pick = two or more; empty grasp = no cup on an item (each cup open, or
on the bin: label 0); the rest lifted nothing from an item (a failed seal or a drop). Each
rate comes with its 95 % Wilson interval.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from perception_nodes.bringup import Bringup
from perception_nodes.eval.pick_eval import wilson_interval


def classify(values: dict[str, str]) -> str:
    """One pick outcome's kind from ``arm/pick_outcome``'s key values."""
    lifted = int(values.get("items_lifted", "0"))
    if lifted == 1:
        return "success"
    if lifted >= 2:
        return "double_pick"
    cups = [int(v) for v in values.get("cup_labels", "").split()]
    return "empty_grasp" if cups and not any(cups) else "no_lift"


def summarise(kinds: list[str]) -> dict:
    """Counts, rates and 95 % Wilson intervals of pick outcome kinds."""
    n = len(kinds)
    out: dict = {"picks": n}
    for kind in ("success", "double_pick", "empty_grasp", "no_lift"):
        k = kinds.count(kind)
        lo, hi = wilson_interval(k, n)
        out[kind] = {"count": k, "rate": round(k / n, 4) if n else 0.0,
                     "ci95": [round(lo, 4), round(hi, 4)]}
    return out


class OutcomeProbe:
    """Pick outcome kinds as the arm reports them, and the segmentation model swap."""

    def __init__(self, node: Node) -> None:
        self.node, self.lock = node, threading.Lock()
        self.kinds: list[str] = []
        self.scenes: set[str] = set()
        self.counting = True
        node.create_subscription(DiagnosticArray, "arm/pick_outcome", self._on_outcome, 10)

    def _on_outcome(self, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for s in msg.status for kv in s.values}
        with self.lock:
            if self.counting:
                self.kinds.append(classify(values))
                self.scenes.add(values.get("scene_seed", ""))

    def set_model(self, node_name: str, model: str, timeout_s: float = 120.0) -> str:
        """Set ``model`` on the segmentation node through its parameter service; returns
        the node's reason when it refuses (empty when it took the model)."""
        client = self.node.create_client(SetParameters, f"{node_name}/set_parameters")
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"no parameter service {node_name}/set_parameters")
        request = SetParameters.Request(
            parameters=[Parameter("model", value=model).to_parameter_msg()])
        future = client.call_async(request)
        end = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < end:
            time.sleep(0.1)
        if not future.done():
            raise RuntimeError(f"setting {node_name}'s model timed out")
        result = future.result().results[0]
        self.node.destroy_client(client)
        return "" if result.successful else result.reason


def run_picks(picks: int, config: Path | str | None = None, overrides: dict | None = None,
              swap_model: str = "", timeout_s: float = 7200.0, progress: bool = True) -> dict:
    """Run the stack until ``picks`` outcomes were counted (after the swap, when one is
    asked) or ``timeout_s``; returns the report (module docstring)."""
    with Bringup(config, overrides=overrides) as bringup:
        probe = bringup.start_with_probe("picks_probe", OutcomeProbe)
        start = time.monotonic()
        swap = None
        if swap_model:
            with probe.lock:
                probe.counting = False
            reason = probe.set_model("segmentation", swap_model)
            if reason:
                raise RuntimeError(f"segmentation refused {swap_model}: {reason}")
            seg = bringup.nodes["segmentation"]
            swap = {"model": swap_model, "model_sha256": seg.health.info.get("model_sha256"),
                    "after_s": round(time.monotonic() - start, 1)}
            with probe.lock:
                probe.kinds.clear()
                probe.counting = True
        last = -1
        while time.monotonic() - start < timeout_s:
            bringup.run_for(5.0)
            with probe.lock:
                done = len(probe.kinds)
            if progress and done // 10 != last // 10:
                print(f"picks {done}/{picks} after {time.monotonic() - start:.0f} s",
                      flush=True)
            last = done
            if done >= picks:
                break
        with probe.lock:
            kinds, scenes = probe.kinds[:picks], len(probe.scenes)
    return {"overrides": overrides or {}, "swap": swap, "scenes": scenes,
            "seconds": round(time.monotonic() - start, 1), **summarise(kinds)}

