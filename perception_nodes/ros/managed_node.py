"""Base class for perception's managed (lifecycle) nodes.

Every node: declares described, validated parameters (a bad value stops it at startup);
subscribes and publishes reliably (best-effort subscriptions lose most large images across
processes), each overridable and logged when configured; configures and activates itself
unless ``autostart`` is false (then an external lifecycle manager drives it); applies
parameters set at run time (see ``ManagedNode``); publishes its health on ``/diagnostics``.
Frame processing nodes also get an ``~/enable`` std_srvs/SetBool service and ``max_fps``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import SetBool

from perception_nodes.ros.diagnostics import NodeHealth, diagnostic_array
from perception_nodes.ros.memory import limit_malloc_arenas
from perception_nodes.ros.params import Param, ParameterValueError, declare_parameters
from perception_nodes.ros.qos import QOS_PROFILES, describe_qos, qos_by_name
from perception_nodes.ros.sync import TimeSynchronizer
from perception_nodes.ros.watchdog import Watchdog

COMMON_PARAMS = (
    Param("autostart", True, "configure and activate at startup; false leaves the node "
          "unconfigured for an external lifecycle manager", read_only=True),
    Param("qos_subscribe", "reliable", "QoS profile of subscriptions (reliable: large "
          "images across processes arrive; sensor_data only for best-effort publishers)",
          choices=tuple(QOS_PROFILES)),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics updates (s)", min=0.05, max=60.0),
    # the simulated cell's camera pauses for up to 4 s while a pick's physics runs
    Param("input_warn_s", 5.0, "an input stream (images, camera info) silent this long while "
          "active is WARN on /diagnostics (s)", min=0.1, max=3600.0),
    Param("input_error_s", 15.0, "... and this long ERROR (s)", min=0.1, max=3600.0),
    Param("watchdog_timeout_s", 60.0, "a callback running this long, or no diagnostics "
          "heartbeat for this long, ends the process with status 3 after an ERROR on "
          "/diagnostics, for its supervisor to restart it (0 = no watchdog)", min=0.0,
          max=3600.0, read_only=True),
)
# applied to the running node without rebuilding its configured state
_HEALTH_PARAMS = frozenset({"diagnostics_period_s", "max_fps", "input_warn_s",
                            "input_error_s"})
# message types that arrive as a stream: silence means a camera or partner node is gone
STREAM_TYPES = ("Image", "CameraInfo")
FRAME_PARAMS = (
    Param("max_fps", 0.0, "process at most this many frames per second (0 = unlimited); "
          "frames arriving faster are dropped and counted", min=0.0, max=1000.0),
)


class ManagedNode(LifecycleNode):
    """Subclasses set ``PARAMS``, implement ``configure_io`` (create publishers,
    subscriptions, timers, core objects) and optionally ``release_io`` and ``check_params``.

    Everything ``configure_io`` creates through ``create_*`` is owned by the configured state:
    publishers are lifecycle publishers (silent unless active), and cleanup destroys every
    publisher, subscription, timer, service and client it made, so each configure starts from
    none. A parameter set at run time is validated (range, choices, ``check_params``) and
    rejected with the reason, or applied: names in ``LIVE_PARAMS`` are read per frame; any
    other change re-runs ``configure_io`` between two callbacks, and if that fails the old
    values are restored and the change is rejected.
    """

    PARAMS: tuple[Param, ...] = ()
    LIVE_PARAMS: frozenset[str] = frozenset()
    PROCESSES_FRAMES = False
    PUBLISH_QOS = "reliable"  # every node publishes reliably (see docs/nodes.md, QoS)

    def __init__(self, node_name: str, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        publish_qos = Param("qos_publish", self.PUBLISH_QOS, "QoS profile of publications",
                            choices=tuple(QOS_PROFILES))
        frame_params = FRAME_PARAMS if self.PROCESSES_FRAMES else ()
        params = COMMON_PARAMS + (publish_qos,) + frame_params + self.PARAMS
        self.param_specs = {p.name: p for p in params}
        self.params = declare_parameters(self, list(params))
        self.check_params(self.params)
        self.health = NodeHealth(input_warn_s=self.params["input_warn_s"],
                                 input_error_s=self.params["input_error_s"])
        self._watched: list[str] = []
        self._in_flight: dict[int, tuple[str, float]] = {}  # thread -> (callback, start)
        self.heartbeat = time.monotonic()
        self.active = False
        self.configured = False
        self.enabled = True
        self._last_frame_time = 0.0
        self._io: list[tuple[str, object]] = []
        self._owning = False
        self._syncs: list = []
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.params["diagnostics_period_s"],
                                             self._publish_diagnostics)
        if self.PROCESSES_FRAMES:
            self.create_service(SetBool, "~/enable", self._on_enable)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.params["autostart"] and \
                self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -- hooks ------------------------------------------------------------------------------
    def check_params(self, params: dict) -> None:
        """Cross-parameter checks (and values derived from them); raise ParameterValueError."""

    def configure_io(self) -> None:
        raise NotImplementedError

    def apply_live(self, changes: dict, params: dict) -> None:
        """Apply ``changes`` of ``LIVE_PARAMS`` that need work before they hold (a model to
        load); ``params`` are the values after the change. Raise ParameterValueError to
        reject the change with the reason (the node keeps its current state)."""

    def release_io(self) -> None:
        """Release what configure_io made besides ROS entities (models, devices, threads)."""

    # -- entities owned by the configured state ---------------------------------------------
    def _owning_io(self) -> bool:
        return getattr(self, "_owning", False)  # rclpy's own entities come before __init__'s

    def _own(self, kind: str, entity):
        if self._owning_io():
            self._io.append((kind, entity))
        return entity

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        if self._owning_io():
            return self._own("lifecycle_publisher", self.create_lifecycle_publisher(
                msg_type, topic, qos_profile, **kwargs))
        return super().create_publisher(msg_type, topic, qos_profile, **kwargs)

    def create_subscription(self, msg_type, topic, callback, *args, watch: bool | None = None,
                            **kwargs):
        """A guarded subscription (see :meth:`_guarded`). ``watch`` (default: for images and
        camera info) makes ``topic`` an input that must keep arriving while the node is
        active: silence is WARN, then ERROR on /diagnostics."""
        callback = self._guarded(callback)
        if watch is None:
            watch = self._owning_io() and msg_type.__name__ in STREAM_TYPES
        if watch and callback is not None:
            inner, health = callback, self.health

            def callback(msg, _topic=topic):
                health.heard(_topic)
                return inner(msg)

            callback._guarded = True
            self._watched.append(topic)
        return self._own("subscription", super().create_subscription(
            msg_type, topic, callback, *args, **kwargs))

    def expect_input(self, name: str) -> None:
        """From configure_io: ``name`` is an input the node reports itself through
        ``health.heard(name)`` (frames from a device) and must keep arriving while active."""
        self._watched.append(name)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        return self._own("timer", super().create_timer(timer_period_sec,
                                                       self._guarded(callback), *args,
                                                       **kwargs))

    def _guarded(self, callback):
        """``callback`` that logs an unexpected exception with its traceback, counts it in
        diagnostics (``callback_errors``) and returns: one bad message or bug must not end
        the executor that serves every callback of the process."""
        if callback is None or getattr(callback, "_guarded", False):
            return callback

        name = getattr(callback, "__qualname__", repr(callback))

        def run(*args, **kwargs):
            in_flight = getattr(self, "_in_flight", None)
            thread = threading.get_ident()
            if in_flight is not None:
                in_flight[thread] = (name, time.monotonic())
            try:
                return callback(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - survive, count and report it
                if getattr(self, "health", None) is None:  # rclpy's own, before __init__
                    raise
                self.health.callback_error(f"{name}: {type(exc).__name__}: {exc}")
                self.get_logger().error(f"callback {name} failed:\n{traceback.format_exc()}",
                                        throttle_duration_sec=5.0)
                return None
            finally:
                if in_flight is not None:
                    in_flight.pop(thread, None)

        run._guarded = True
        return run

    def create_service(self, *args, **kwargs):
        return self._own("service", super().create_service(*args, **kwargs))

    def create_client(self, *args, **kwargs):
        return self._own("client", super().create_client(*args, **kwargs))

    def synchroniser(self, subscribers: list, queue_size: int = 10):
        """An exact-stamp synchroniser over ``subscribers`` whose drops (a partner that
        never came, an input queue overflowing) are counted in diagnostics; a matched set
        whose frame ids differ is dropped as malformed."""
        sync = TimeSynchronizer(subscribers, queue_size=queue_size)
        self._syncs.append(sync)
        register = sync.registerCallback

        def register_checked(callback, *args):
            def same_frame(*msgs):
                # one frame's messages come from one camera: derived topics carry the
                # source image's header, so another frame id is a miswired input
                ids = {m.header.frame_id for m in msgs if hasattr(m, "header")}
                if len(ids) > 1:
                    self.drop_malformed("frame", ValueError(
                        f"inputs of one stamp in different frames {sorted(ids)}"))
                    return None
                return callback(*msgs)
            return register(same_frame, *args)

        sync.registerCallback = register_checked
        return sync

    def io_counts(self) -> dict[str, int]:
        """Live publishers, subscriptions, timers, services and clients of this node."""
        return {"publishers": len(list(self.publishers)),
                "subscriptions": len(list(self.subscriptions)),
                "timers": len(list(self.timers)), "services": len(list(self.services)),
                "clients": len(list(self.clients))}

    def _build_io(self) -> None:
        self.sub_qos = qos_by_name(self.params["qos_subscribe"])
        self.pub_qos = qos_by_name(self.params["qos_publish"])
        self._owning = True
        try:
            self.configure_io()
        except BaseException:
            self._owning = False
            self._destroy_io()
            raise
        self._owning = False
        self.configured = True
        self.get_logger().info(
            f"QoS: subscribe {self.params['qos_subscribe']} ({describe_qos(self.sub_qos)}), "
            f"publish {self.params['qos_publish']} ({describe_qos(self.pub_qos)})")

    def _destroy_io(self) -> None:
        try:
            self.release_io()
        finally:
            destroy = {"lifecycle_publisher": self.destroy_lifecycle_publisher,
                       "subscription": self.destroy_subscription,
                       "timer": self.destroy_timer, "service": self.destroy_service,
                       "client": self.destroy_client}
            for kind, entity in reversed(self._io):
                destroy[kind](entity)
            self._io.clear()
            self._syncs.clear()
            self._watched.clear()
            self.health.unwatch()
            self.configured = False

    # -- parameters at run time -------------------------------------------------------------
    def _on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        new = {p.name: p.value for p in changes if p.name in self.param_specs}
        try:
            for name, value in new.items():
                self.param_specs[name].check(value)
            self.check_params({**self.params, **new})
        except ParameterValueError as exc:
            self.check_params(self.params)  # derived values back to the current parameters
            return SetParametersResult(successful=False, reason=str(exc))
        new = {k: v for k, v in new.items() if self.params.get(k) != v}
        if not new:
            return SetParametersResult(successful=True)
        live = {k: v for k, v in new.items() if k in self.LIVE_PARAMS}
        if live and self.configured:
            try:
                self.apply_live(live, {**self.params, **new})
            except ParameterValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        old = dict(self.params)
        self.params.update(new)
        self.health.input_warn_s = self.params["input_warn_s"]
        self.health.input_error_s = self.params["input_error_s"]
        if "diagnostics_period_s" in new:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = super().create_timer(new["diagnostics_period_s"],
                                                    self._publish_diagnostics)
        rebuild = set(new) - self.LIVE_PARAMS - _HEALTH_PARAMS
        if rebuild and self.configured:
            try:
                self._reconfigure()
            except Exception as exc:  # noqa: BLE001 - any failure keeps the old values
                self.params = old
                self.check_params(old)
                self._reconfigure()
                return SetParametersResult(successful=False,
                                           reason=f"could not apply {sorted(new)}: {exc}")
            self.get_logger().info(f"reconfigured for {sorted(rebuild)}")
        return SetParametersResult(successful=True)

    def _reconfigure(self) -> None:
        """Rebuild the configured state with the current parameters, keeping activity."""
        self._destroy_io()
        self._build_io()
        if self.active:
            for entity in self._managed_entities:
                entity.on_activate(None)
            if self.enabled:
                self.health.watch(self._watched)

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._build_io()
        except Exception as exc:  # a node that cannot configure reports why, and stays up
            self.get_logger().error(f"configure failed: {exc}")
            self.health.fail(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.health.recover()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        if self.enabled:
            self.health.watch(self._watched)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.health.unwatch()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._destroy_io()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        if self.configured:
            self._destroy_io()
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
        if self.enabled and self.active:
            self.health.watch(self._watched)
        elif not self.enabled:
            self.health.unwatch()
        response.success = True
        response.message = "enabled" if self.enabled else "disabled"
        self.get_logger().info(f"processing {response.message}")
        return response

    def stall_reason(self, timeout_s: float) -> str:
        """Why this node is stuck ('' if it is not): a callback running over ``timeout_s``,
        or no diagnostics heartbeat for that long (its executor is dead or blocked)."""
        now = time.monotonic()
        running = sorted(self._in_flight.values(), key=lambda c: c[1])
        silent = now - self.heartbeat
        stale = silent > max(timeout_s, 3 * self.params["diagnostics_period_s"])
        if running and (now - running[0][1] > timeout_s or stale):
            # the oldest running callback also blocks the heartbeat (one callback group)
            name, start = running[0]
            return f"{self.get_name()}: callback {name} has run for {now - start:.0f} s"
        if stale:
            return f"{self.get_name()}: no callback has run for {silent:.0f} s"
        return ""

    def report_stall(self, reason: str) -> None:
        """ERROR on /diagnostics with ``reason``, published from the watchdog's thread."""
        self.health.fail(f"stalled, restarting: {reason}")
        self.get_logger().error(f"watchdog: {reason}; the process exits for its supervisor "
                                "to restart it")
        self._publish_diagnostics(beat=False)

    def _publish_diagnostics(self, beat: bool = True) -> None:
        if beat:
            self.heartbeat = time.monotonic()
        self.health.info["lifecycle"] = "active" if self.active else (
            "inactive" if self.configured else "unconfigured")
        self.health.info["enabled"] = str(self.enabled).lower()
        if self._syncs:
            self.health.info["sync_dropped"] = str(sum(getattr(s, "dropped", 0)
                                                       for s in self._syncs))
        status = self.health.status(f"perception: {self.get_name()}", self.get_name())
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def run_node(node_class: type, args: list[str] | None = None) -> int:
    """Entry point body for ``ros2 run perception NODE``: spin until SIGINT or SIGTERM, then
    shut the node down through its lifecycle while the context is still valid (rclpy's own
    handler would invalidate it first, and the shutdown transition could not publish)."""
    limit_malloc_arenas()  # before DDS and executor threads allocate
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        node = node_class()
    except ParameterValueError as exc:
        print(f"[{node_class.__name__}] bad parameter: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    watchdog = None
    if node.params["watchdog_timeout_s"] > 0:
        watchdog = Watchdog(lambda: [node], node.params["watchdog_timeout_s"]).start()
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        # a second signal (a terminal signals the whole process group, launch again) must
        # not cut the release of models, devices and files short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if watchdog is not None:
            watchdog.stop()
        if node.configured and rclpy.ok():
            node.trigger_shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
