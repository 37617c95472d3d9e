"""Exact-stamp synchroniser (message_filters API) on hand-made messages."""

from types import SimpleNamespace

from perception_nodes.ros.sync import TimeSynchronizer


class FakeInput:
    """Stands in for a Subscriber: the synchroniser only uses registerCallback."""

    def __init__(self):
        self.callbacks = []

    def registerCallback(self, cb, *args):  # noqa: N802 - message_filters' name
        self.callbacks.append((cb, args))

    def emit(self, sec, nanosec, payload):
        msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec,
                                                                           nanosec=nanosec)),
                              payload=payload)
        for cb, args in self.callbacks:
            cb(msg, *args)


def test_pairs_only_identical_stamps_in_any_arrival_order():
    a, b = FakeInput(), FakeInput()
    sync = TimeSynchronizer([a, b], queue_size=5)
    got = []
    sync.registerCallback(lambda x, y: got.append((x.payload, y.payload)))
    a.emit(1, 0, "a1")
    b.emit(1, 1, "b1+1ns")  # 1 ns apart: never paired
    b.emit(1, 0, "b1")
    b.emit(2, 0, "b2")
    a.emit(2, 0, "a2")
    assert got == [("a1", "b1"), ("a2", "b2")]


def test_unmatched_messages_are_bounded_and_counted():
    a, b = FakeInput(), FakeInput()
    sync = TimeSynchronizer([a, b], queue_size=3)
    for i in range(10):
        a.emit(i, 0, i)
    assert len(sync.queues[0]) == 3 and sync.dropped == 7
    b.emit(9, 0, "late")
    assert len(sync.queues[0]) == 0  # older stamps can never match any more
    assert sync.dropped == 9
