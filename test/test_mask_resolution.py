"""Masks at camera resolution: the latent modes' grid labels carried to a 640x480 image by
grid-SLIC superpixels put mask edges within 2 px of the item's edge (nearest-neighbour
resizing leaves them on the cells' edges, here 3 px off)."""

import cv2
import numpy as np

from perception_nodes.core.confidence_masks import InstancePrediction
from perception_nodes.inference.segmenter import label_image

H, W, CELL = 480, 640, 8
TOP, BOTTOM, LEFT, RIGHT = 101, 299, 205, 419  # an item whose edges fall inside cells


def staged() -> tuple[np.ndarray, np.ndarray, InstancePrediction]:
    truth = np.zeros((H, W), bool)
    truth[TOP:BOTTOM + 1, LEFT:RIGHT + 1] = True
    rgb = np.full((H, W, 3), 90, np.uint8)
    rgb[truth] = (200, 60, 60)
    # the network's grid mask: the cells whose centre lies on the item
    v, u = np.mgrid[0:H // CELL, 0:W // CELL]
    cv, cu = v * CELL + CELL / 2, u * CELL + CELL / 2
    cells = (cv >= TOP) & (cv <= BOTTOM) & (cu >= LEFT) & (cu <= RIGHT)
    pred = InstancePrediction(cells[None], np.array([0.9], np.float32))
    return truth, rgb, pred


def worst_edge_error_px(labels: np.ndarray, truth: np.ndarray) -> float:
    edge = cv2.Canny(truth.astype(np.uint8) * 255, 1, 1) > 0
    distance = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
    wrong = (labels > 0) != truth
    return float(distance[wrong].max()) if wrong.any() else 0.0


def test_superpixel_upsampling_puts_mask_edges_within_2_px():
    truth, rgb, pred = staged()
    labels, confidence, scores = label_image(pred, (H, W), 0.3, rgb)
    assert labels.shape == (H, W) and confidence.shape == (H, W) and scores.tolist() == [
        np.float32(0.9)]
    assert worst_edge_error_px(labels, truth) <= 2.0
    nearest, _, _ = label_image(pred, (H, W), 0.3)  # without the image: blocks of cells
    assert worst_edge_error_px(nearest, truth) > 2.5


def test_an_image_that_is_not_whole_cells_falls_back_to_nearest():
    _, rgb, pred = staged()
    labels, _, _ = label_image(pred, (H - 4, W), 0.3, rgb[:-4])
    assert labels.shape == (H - 4, W) and labels.max() == 1
