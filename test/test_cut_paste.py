"""Cut-and-paste on tiny seeded images: geometry, occlusion, renumbering, inpainting band."""

import cv2
import numpy as np
import pytest

from perception_nodes.core.cut_paste import ObjectCrop, cut_object, paste_objects, transform_crop


def _scene():
    image = np.full((60, 80, 3), 40, np.uint8)
    labels = np.zeros((60, 80), np.uint16)
    labels[5:15, 5:15], labels[40:50, 60:70] = 1, 2
    image[labels == 1], image[labels == 2] = (200, 0, 0), (0, 200, 0)
    return image, labels


def test_cut_keeps_the_bounding_box_and_refuses_nothing():
    image, labels = _scene()
    crop = cut_object(image, labels == 2)
    assert crop.mask.shape == (10, 10) and crop.mask.all() and (crop.rgb == (0, 200, 0)).all()
    with pytest.raises(ValueError):
        cut_object(image, np.zeros((60, 80), bool))


def test_identity_transform_keeps_the_area_and_a_quarter_turn_swaps_sides():
    crop = ObjectCrop(np.zeros((4, 10, 3), np.uint8), np.ones((4, 10), bool))
    same = transform_crop(crop, 0.0, 1.0)
    assert same.mask.sum() == 40
    turned = transform_crop(crop, 90.0, 1.0)
    rows, cols = np.nonzero(turned.mask)
    assert np.ptp(rows) + 1 == 10 and np.ptp(cols) + 1 == 4
    assert transform_crop(crop, 0.0, 0.5).mask.sum() == pytest.approx(10, abs=4)


def test_pasted_objects_carry_their_colour_labels_run_one_to_n_and_hidden_ones_vanish():
    image, labels = _scene()
    blue = ObjectCrop(np.full((12, 12, 3), (0, 0, 255), np.uint8), np.ones((12, 12), bool))
    for seed in range(20):
        out, lab, _ = paste_objects(image, labels, [blue], np.random.default_rng(seed),
                                 max_objects=6, scale_range=(1.0, 1.0), inpaint_px=0)
        ids = np.unique(lab[lab > 0])
        assert (ids == np.arange(1, len(ids) + 1)).all()
        for i in ids:  # every instance is either an original or a blue paste
            colours = {tuple(c) for c in out[lab == i]}
            assert colours <= {(200, 0, 0), (0, 200, 0), (0, 0, 255)} and len(colours) == 1
        assert ((lab > 0) == ((out != 40).any(axis=2))).all()
    same, lab, _ = paste_objects(image, labels, [], np.random.default_rng(0))
    assert (same == image).all() and (lab == labels).all()


def test_inpainting_touches_only_the_band_around_pasted_boundaries():
    image, labels = _scene()
    stripes = np.zeros((10, 10, 3), np.uint8)
    stripes[::2] = 255
    crop = ObjectCrop(stripes, np.ones((10, 10), bool))
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    raw, lab, _ = paste_objects(image, labels, [crop], rng_a, max_objects=3, inpaint_px=0)
    smooth, lab2, _ = paste_objects(image, labels, [crop], rng_b, max_objects=3, inpaint_px=2)
    assert (lab == lab2).all()
    changed = (raw != smooth).any(axis=2)
    assert changed.any()
    pasted = (raw != image).any(axis=2)  # stripes differ from everything under them
    near = cv2.dilate(pasted.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert not changed[~near].any()  # the 2 px band (and Telea's 3 px radius) only
