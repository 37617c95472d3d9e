"""Every adversarial depth frame terminates through the node's path (conversion, floor and
height, grasp planner), refused with a reason or planned; how long each takes is the
benchmark's (`perception bench --only adversarial`), not a test's."""

import threading

from perception_nodes.eval.adversarial import adversarial_frames, run_case

# a frame that has not returned by then hangs (the bench measures tens of milliseconds)
HANG_S = 120.0


def test_each_adversarial_frame_terminates_with_a_plan_or_a_reason():
    results: dict[str, dict] = {}

    def run_all() -> None:
        for name, labels, depth, cam in adversarial_frames(96, 128):
            results[name] = run_case(labels, depth, cam)

    worker = threading.Thread(target=run_all, daemon=True)
    worker.start()
    worker.join(HANG_S)
    assert not worker.is_alive(), f"hung after {sorted(results)}"
    assert len(results) == 10
    for name, out in results.items():
        assert ("candidates" in out) != ("plan_refused" in out), name
    # values no camera measures are invalid, not geometry: nothing to fit or plan
    assert results["depth_1mm_16uc1"]["candidates"] == 0
    assert "fewer than 3 valid" in results["nan_everywhere"]["height_refused"]
    # the longest accepted lens at the nearest valid depth: a cup no image holds
    assert "px in radius" in results["nearest_depth_longest_lens"]["plan_refused"]
    assert results["flat_one_item"]["candidates"] == 1
