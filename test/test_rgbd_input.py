"""Geometry as input: the height channel of RGB-H models (one path for training, export and
inference), depth holes, the training augmentation, and RGB-H models end to end."""

import numpy as np
import pytest
from test_geometric import FLOOR, A, B, C, K, staged

from perception_nodes.core.floor_plane import height_above_plane
from perception_nodes.core.instance_encoding import (
    HEIGHT_UNIT_M,
    fill_missing_height,
    network_input,
    preprocess,
    preprocess_height,
    preprocess_rgbh,
)
from perception_nodes.learning.augment import augment_scene, punch_holes, zoom_crop


def test_holes_take_their_nearest_measured_value():
    nan = np.nan
    height = np.array([[0.0, 0.0, nan, nan, 0.1, 0.1],
                       [0.0, 0.0, 0.0, nan, 0.1, 0.1]], np.float32)
    filled = fill_missing_height(height)
    np.testing.assert_array_equal(filled[:, [0, 1, 4, 5]], height[:, [0, 1, 4, 5]])
    assert filled[0, 3] == pytest.approx(0.1) and filled[1, 3] in (0.0, np.float32(0.1))
    assert filled[0, 2] == 0.0  # nearest measured: (1, 2), the floor
    assert np.isfinite(filled).all() and filled.dtype == np.float32
    assert (fill_missing_height(np.full((2, 3), np.inf, np.float32)) == 0).all()
    whole = np.ones((3, 3), np.float32)
    assert fill_missing_height(whole) is not None and (fill_missing_height(whole) == 1).all()


def test_the_height_channel_of_a_staged_bin():
    height = height_above_plane(staged(), K, FLOOR)
    x = preprocess_height(height, (120, 160))[0, 0]
    assert x.shape == (120, 160) and np.isfinite(x).all()
    assert x[A] == pytest.approx(0.05 / HEIGHT_UNIT_M, abs=1e-4)
    assert x[B] == pytest.approx(0.03 / HEIGHT_UNIT_M, abs=1e-4)
    assert x[C] == pytest.approx(0.04 / HEIGHT_UNIT_M, abs=1e-4)
    assert x[100:, :] == pytest.approx(0.0, abs=1e-5)  # the floor
    # the glint on A reads as A, the invalid band above the boxes as the floor below it
    assert x[30, 30] == pytest.approx(1.0, abs=1e-4) and x[0, 5] == pytest.approx(0.0, abs=1e-5)
    tall = np.full((4, 4), 1.0, np.float32)
    assert preprocess_height(tall, (2, 2)).max() == pytest.approx(0.25 / HEIGHT_UNIT_M)
    assert preprocess_height(-tall, (2, 2)).max() == 0.0  # below the floor: the floor


def test_network_input_by_channel_count():
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    height = height_above_plane(staged(), K, FLOOR)
    np.testing.assert_array_equal(network_input(rgb, height, (60, 80), 3),
                                  preprocess(rgb, (60, 80)))
    x = network_input(rgb, height, (60, 80), 4)
    assert x.shape == (1, 4, 60, 80) and x.dtype == np.float32
    np.testing.assert_array_equal(x, preprocess_rgbh(rgb, height, (60, 80)))
    np.testing.assert_array_equal(x[:, :3], preprocess(rgb, (60, 80)))
    with pytest.raises(ValueError, match="got no height"):
        network_input(rgb, None, (60, 80), 4)
    with pytest.raises(ValueError, match="not aligned"):
        network_input(rgb, height[:-1], (60, 80), 4)
    with pytest.raises(ValueError, match="3 .* or 4"):
        network_input(rgb, height, (60, 80), 5)


def test_augmentation_is_seeded_and_keeps_image_labels_and_height_aligned():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (120, 160, 3), np.uint8)
    labels = np.zeros((120, 160), np.uint16)
    labels[A], labels[B], labels[C] = 1, 2, 3
    height = height_above_plane(staged(), K, FLOOR)
    one = augment_scene(rgb, labels, height, np.random.default_rng([4, 1]), "full")
    two = augment_scene(rgb, labels, height, np.random.default_rng([4, 1]), "full")
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    for seed in range(12):
        out_rgb, out_labels, out_height = augment_scene(rgb, labels, height,
                                                        np.random.default_rng(seed), "full")
        assert out_rgb.shape == rgb.shape and out_rgb.dtype == np.uint8
        assert out_labels.shape == labels.shape and set(np.unique(out_labels)) <= {0, 1, 2, 3}
        measured = np.isfinite(out_height)
        # height noise is 2 mm: each label still stands at its box's height
        for label, metres in ((1, 0.05), (2, 0.03), (3, 0.04)):
            on = (out_labels == label) & measured
            if on.sum() > 20:
                assert np.median(out_height[on]) == pytest.approx(metres, abs=0.003)
    basic = augment_scene(rgb, labels, None, np.random.default_rng(3), "basic")
    assert basic[2] is None
    with pytest.raises(ValueError, match="augmentation"):
        augment_scene(rgb, labels, None, rng, "heavy")


def test_zoom_crops_the_original_size_and_holes_are_missing_depth():
    labels = np.zeros((40, 60), np.uint16)
    labels[10:30, 20:40] = 1
    rgb = np.zeros((40, 60, 3), np.uint8)
    height = np.where(labels > 0, 0.05, 0.0).astype(np.float32)
    z_rgb, z_labels, z_height = zoom_crop(rgb, labels, height, 1.3, np.random.default_rng(0))
    assert z_rgb.shape == rgb.shape and z_labels.shape == labels.shape
    assert (z_labels > 0).sum() == pytest.approx(400 * 1.3**2, rel=0.1)
    np.testing.assert_array_equal(z_height > 0, z_labels > 0)
    holed = punch_holes(height, np.random.default_rng(1))
    assert np.isnan(holed).any() and not np.isnan(height).any()
    np.testing.assert_array_equal(holed[np.isfinite(holed)], height[np.isfinite(holed)])


def test_an_rgbh_model_reads_height_and_refuses_to_run_without_it(smoke_models):
    from perception_nodes.inference.segmenter import ModeSegmenter, SegmenterRunner
    from perception_nodes.inference.superpixel import SuperpixelRunner

    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    height = height_above_plane(staged(), K, FLOOR)
    runner = SegmenterRunner(smoke_models / "latent_segmenter_rgbh" / "model.onnx", "cpu")
    assert runner.needs_height and runner.channels == 4
    with pytest.raises(ValueError, match="got no height"):
        runner.predict_labels(rgb, 2)
    flat = runner.predict_labels(rgb, 0, height=np.zeros_like(height))
    stacked = runner.predict_labels(rgb, 0, height=height)
    assert flat[0].shape == stacked[0].shape  # (1, h, w): the prior mean
    # the height channel reaches the network: its outputs differ with the height
    out_flat = runner.model.run({"image": network_input(rgb, np.zeros_like(height),
                                                        runner.input_size, 4),
                                 "eps": np.zeros((1, runner.latent_dim), np.float32)})["out"]
    out_boxes = runner.model.run({"image": network_input(rgb, height, runner.input_size, 4),
                                  "eps": np.zeros((1, runner.latent_dim), np.float32)})["out"]
    assert np.abs(out_flat - out_boxes).max() > 1e-4
    colour = SegmenterRunner(smoke_models / "latent_segmenter" / "model.onnx", "cpu")
    assert not colour.needs_height  # and a height given to it is not used:
    np.testing.assert_array_equal(colour.predict_labels(rgb, 0, height=height)[0],
                                  colour.predict_labels(rgb, 0)[0])
    sp = SuperpixelRunner(smoke_models / "superpixel_segmenter_rgbh" / "model.onnx", "cpu")
    assert sp.needs_height
    assert sp.segment(rgb, height=height).labels.shape == (120, 160)
    sp.close()
    mode = ModeSegmenter("confidence_mask",
                         smoke_models / "latent_segmenter_rgbh" / "model.onnx", "cpu",
                         num_samples=3)
    assert mode.needs_height and mode(rgb, height).labels.shape == (120, 160)
