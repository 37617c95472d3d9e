"""Declared, described and validated node parameters (rejected at startup when bad)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


class ParameterValueError(ValueError):
    """A parameter value outside what the node accepts."""


@dataclass(frozen=True)
class Param:
    """One parameter: default, description, and the allowed values or range."""

    name: str
    default: Any
    description: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        constraints = f"one of {list(self.choices)}" if self.choices else ""
        desc = ParameterDescriptor(description=self.description, read_only=self.read_only,
                                   additional_constraints=constraints)
        if self.min is not None and self.max is not None:
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                desc.integer_range = [IntegerRange(from_value=int(self.min),
                                                   to_value=int(self.max), step=0)]
            elif isinstance(self.default, float):
                desc.floating_point_range = [FloatingPointRange(
                    from_value=float(self.min), to_value=float(self.max), step=0.0)]
        return desc

    def check(self, value: Any) -> None:
        """Raise ParameterValueError if ``value`` is not allowed."""
        if self.choices is not None and value not in self.choices:
            raise ParameterValueError(
                f"parameter {self.name!r} = {value!r} is not one of {list(self.choices)}")
        if self.min is not None and value < self.min:
            raise ParameterValueError(f"parameter {self.name!r} = {value!r} is below {self.min}")
        if self.max is not None and value > self.max:
            raise ParameterValueError(f"parameter {self.name!r} = {value!r} is above {self.max}")


def declare_parameters(node: Node, params: list[Param]) -> dict[str, Any]:
    """Declare each parameter on ``node`` and return their values, validated.

    Raises:
        ParameterValueError: an override (YAML or launch) outside the allowed values.
    """
    values = {}
    for param in params:
        value = node.declare_parameter(param.name, param.default, param.descriptor()).value
        param.check(value)
        values[param.name] = value
    return values
