"""QoS profiles by name: images in with sensor-data QoS, results out reliable (overridable)."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)

QOS_PROFILES: dict[str, QoSProfile] = {
    "sensor_data": qos_profile_sensor_data,
    "reliable": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE),
    "system_default": qos_profile_system_default,
}
# Latched: the latest message is kept for late joiners (camera_info-like static data).
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def qos_by_name(name: str) -> QoSProfile:
    """The profile called ``name``; ValueError lists the allowed names."""
    try:
        return QOS_PROFILES[name]
    except KeyError:
        allowed = sorted(QOS_PROFILES)
        raise ValueError(f"unknown QoS profile {name!r}; allowed: {allowed}") from None


def describe_qos(profile: QoSProfile) -> str:
    """One line for the startup log: reliability, durability, history depth."""
    return (f"{profile.reliability.name.lower()}/{profile.durability.name.lower()}/"
            f"{profile.history.name.lower()}({profile.depth})")
