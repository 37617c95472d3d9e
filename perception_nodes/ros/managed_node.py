"""Base class for perception's managed (lifecycle) nodes.

Every node: declares described, validated parameters (a bad value stops it at startup);
subscribes to images with the sensor-data QoS and publishes reliably, each overridable and
logged at startup; configures and activates itself unless ``autostart`` is false (then an
external lifecycle manager drives it); publishes its health on ``/diagnostics``. Frame
processing nodes also get an ``~/enable`` std_srvs/SetBool service and ``max_fps``.
"""

from __future__ import annotations

import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from std_srvs.srv import SetBool

from perception_nodes.ros.diagnostics import NodeHealth, diagnostic_array
from perception_nodes.ros.params import Param, ParameterValueError, declare_parameters
from perception_nodes.ros.qos import QOS_PROFILES, describe_qos, qos_by_name

COMMON_PARAMS = (
    Param("autostart", True, "configure and activate at startup; false leaves the node "
          "unconfigured for an external lifecycle manager"),
    Param("qos_subscribe", "sensor_data", "QoS profile of image subscriptions",
          choices=tuple(QOS_PROFILES)),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics updates (s)", min=0.05, max=60.0),
)
FRAME_PARAMS = (
    Param("max_fps", 0.0, "process at most this many frames per second (0 = unlimited); "
          "frames arriving faster are dropped and counted", min=0.0, max=1000.0),
)


class ManagedNode(LifecycleNode):
    """Subclasses set ``PARAMS``, implement ``configure_io`` (create publishers,
    subscriptions, timers, core objects) and optionally ``release_io`` and ``check_params``."""

    PARAMS: tuple[Param, ...] = ()
    PROCESSES_FRAMES = False
    PUBLISH_QOS = "reliable"  # camera drivers publish sensor data; everything else reliably

    def __init__(self, node_name: str, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        publish_qos = Param("qos_publish", self.PUBLISH_QOS, "QoS profile of publications",
                            choices=tuple(QOS_PROFILES))
        frame_params = FRAME_PARAMS if self.PROCESSES_FRAMES else ()
        params = COMMON_PARAMS + (publish_qos,) + frame_params + self.PARAMS
        self.params = declare_parameters(self, list(params))
        self.check_params(self.params)
        self.sub_qos = qos_by_name(self.params["qos_subscribe"])
        self.pub_qos = qos_by_name(self.params["qos_publish"])
        self.get_logger().info(
            f"QoS: subscribe {self.params['qos_subscribe']} ({describe_qos(self.sub_qos)}), "
            f"publish {self.params['qos_publish']} ({describe_qos(self.pub_qos)})")
        self.health = NodeHealth()
        self.active = False
        self.enabled = True
        self._last_frame_time = 0.0
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.params["diagnostics_period_s"], self._publish_diagnostics)
        if self.PROCESSES_FRAMES:
            self.create_service(SetBool, "~/enable", self._on_enable)
        if self.params["autostart"] and \
                self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -- hooks ------------------------------------------------------------------------------
    def check_params(self, params: dict) -> None:
        """Cross-parameter checks; raise ParameterValueError."""

    def configure_io(self) -> None:
        raise NotImplementedError

    def release_io(self) -> None:
        """Destroy what configure_io made (default: nothing to release)."""

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.configure_io()
        except Exception as exc:  # a node that cannot configure reports why, and stays up
            self.get_logger().error(f"configure failed: {exc}")
            self.health.last_error = str(exc)
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.release_io()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.release_io()
        return TransitionCallbackReturn.SUCCESS

    def drop_malformed(self, what: str, exc: Exception) -> None:
        """A malformed message: counted in diagnostics and logged (throttled); the caller
        returns without publishing, and the node keeps running."""
        self.health.malformed(str(exc))
        self.get_logger().warning(f"dropped malformed {what}: {exc}", throttle_duration_sec=5.0)

    # -- frame gating -----------------------------------------------------------------------
    def should_process(self) -> bool:
        """True when active, enabled and within ``max_fps``; a refused frame counts as dropped."""
        if not (self.active and self.enabled):
            return False
        max_fps = self.params.get("max_fps", 0.0)
        now = time.monotonic()
        if max_fps > 0 and now - self._last_frame_time < 1.0 / max_fps:
            self.health.count("dropped")
            return False
        self._last_frame_time = now
        return True

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if self.enabled else "disabled"
        self.get_logger().info(f"processing {response.message}")
        return response

    def _publish_diagnostics(self) -> None:
        self.health.info["lifecycle"] = "active" if self.active else "inactive"
        self.health.info["enabled"] = str(self.enabled).lower()
        status = self.health.status(f"perception: {self.get_name()}", self.get_name())
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def run_node(node_class: type, args: list[str] | None = None) -> int:
    """Entry point body for ``ros2 run perception NODE``: spin until shutdown."""
    rclpy.init(args=args)
    try:
        node = node_class()
    except ParameterValueError as exc:
        print(f"[{node_class.__name__}] bad parameter: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
