"""The soak report from samples: picks per minute, RSS growth by medians of thirds after the
warm-up, latency drift, and the targets (`perception soak` runs the stack; this checks the
arithmetic on made-up samples)."""

from perception_nodes.eval.soak import report


def _samples(rss: list[float], latency: list[float]) -> list[dict]:
    return [{"t_s": 60.0 + 10 * i, "rss_mb": r, "picks": i,
             "latency_p50_ms": {"segmentation": lat}} for i, (r, lat) in
            enumerate(zip(rss, latency, strict=True))]


def test_a_steady_soak_passes_and_one_swing_does_not_count_as_growth():
    rss = [400, 410, 400, 480, 400, 405, 401, 399, 404]  # one 80 MB swing mid-run
    result = report(_samples(rss, [50.0] * 9), [(30.0 + 60 * i, 1) for i in range(10)],
                    {"segmentation": 0}, {"segmentation": "ok"}, 10, 60.0)
    assert result["picks_per_minute"] == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert abs(result["rss_growth_after_warmup"]) < 0.02
    assert result["latency_drift"] == {"segmentation": 1.0}
    assert result["passed"] and result["worst_diagnostics"] == {"segmentation": "OK"}


def test_a_stall_growth_and_drift_each_fail_their_target():
    rss = [400, 400, 400, 430, 430, 430, 460, 460, 460]
    latency = [50.0, 50.0, 50.0, 60, 60, 60, 90.0, 90.0, 90.0]
    picks = [(10.0, 1), (70.0, 0), (250.0, 1)]  # nothing in minutes 2 and 4..9
    result = report(_samples(rss, latency), picks, {"grasp_regions": 2},
                    {"grasp_regions": "no segmentation/instance_labels for 20 s"}, 5, 60.0)
    assert result["picks_per_minute"] == [1, 1, 0, 0, 1]
    assert result["longest_gap_between_picks_s"] == 180.0
    assert abs(result["rss_growth_after_warmup"] - 0.15) < 1e-9
    assert result["latency_drift"]["segmentation"] == 1.8
    assert result["targets"] == {"picks_every_minute": False, "rss_growth_under_5pct": False,
                                 "no_latency_drift": False}
    assert result["worst_diagnostics"] == {"grasp_regions": "ERROR"}
    assert result["picks_without_lift"] == 1 and result["items_lifted"] == 2
