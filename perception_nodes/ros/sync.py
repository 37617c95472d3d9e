"""Exact-stamp synchronisation of topics derived from one image.

The API is message_filters' (``Subscriber``, ``TimeSynchronizer``, ``registerCallback``); the
real message_filters is used where it is installed. Derived topics carry their source image's
header, so exact matching is correct and approximate matching is never needed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - only on a full ROS 2 install
    from message_filters import Subscriber, TimeSynchronizer  # noqa: F401
except ImportError:

    class Subscriber:  # type: ignore[no-redef]
        """A subscription that forwards each message to registered callbacks."""

        def __init__(self, node, msg_type, topic: str, qos_profile=10, **kwargs: Any) -> None:
            self.callbacks: list[tuple[Callable, tuple]] = []
            self.sub = node.create_subscription(msg_type, topic, self._on_message, qos_profile,
                                                **kwargs)

        def _on_message(self, msg) -> None:
            for cb, args in list(self.callbacks):
                cb(msg, *args)

        def registerCallback(self, cb: Callable, *args: Any) -> None:  # noqa: N802
            self.callbacks.append((cb, args))

    class TimeSynchronizer:  # type: ignore[no-redef]
        """Calls back with one message per input when all inputs share one exact stamp.

        Each input keeps at most ``queue_size`` stamps; older ones are dropped and counted
        in ``dropped``, so a missing partner never grows memory.
        """

        def __init__(self, fs: list, queue_size: int) -> None:
            self.queue_size = queue_size
            self.queues: list[OrderedDict] = [OrderedDict() for _ in fs]
            self.callbacks: list[tuple[Callable, tuple]] = []
            self.dropped = 0
            self._lock = threading.Lock()
            for i, f in enumerate(fs):
                f.registerCallback(self._add, i)

        def registerCallback(self, cb: Callable, *args: Any) -> None:  # noqa: N802
            self.callbacks.append((cb, args))

        def _add(self, msg, index: int) -> None:
            stamp = msg.header.stamp
            key = (stamp.sec, stamp.nanosec)
            with self._lock:
                queue = self.queues[index]
                queue[key] = msg
                while len(queue) > self.queue_size:
                    queue.popitem(last=False)
                    self.dropped += 1
                if not all(key in q for q in self.queues):
                    return
                msgs = [q.pop(key) for q in self.queues]
                for q in self.queues:  # anything older than a matched stamp can never match
                    for old in [k for k in q if k < key]:
                        del q[old]
                        self.dropped += 1
            for cb, args in self.callbacks:
                cb(*msgs, *args)
