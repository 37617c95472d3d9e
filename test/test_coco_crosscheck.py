"""Our mAP against pycocotools' COCOeval on the same seeded masks (the issue's cross-check)."""

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from perception_nodes.core.instance_metrics import InstanceEvaluator


def _random_image(rng: np.random.Generator, h: int = 40, w: int = 56):
    """Rectangles as ground truth; predictions are jittered, merged, missed or spurious."""
    gts = []
    for _ in range(rng.integers(1, 6)):
        y, x = rng.integers(0, h - 12), rng.integers(0, w - 14)
        m = np.zeros((h, w), bool)
        m[y : y + rng.integers(6, 16), x : x + rng.integers(6, 18)] = True
        gts.append(m)
    preds = []
    for g in gts:
        if rng.uniform() < 0.15:
            continue
        dy, dx = rng.integers(-1, 2, size=2)
        preds.append(np.roll(g, (dy, dx), axis=(0, 1)))
    if len(gts) > 1 and rng.uniform() < 0.3:
        preds.append(gts[0] | gts[1])
    for _ in range(rng.integers(0, 3)):
        y, x = rng.integers(0, h - 6), rng.integers(0, w - 6)
        m = np.zeros((h, w), bool)
        m[y : y + 6, x : x + 6] = True
        preds.append(m)
    preds = [p for p in preds if p.any()]
    return np.array(gts), np.array(preds).reshape(-1, h, w), rng.uniform(0, 1, len(preds))


def _coco_map(images) -> float:
    h, w = images[0][0].shape[1:]
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "item"}]}
    dets = []
    for i, (gts, preds, scores) in enumerate(images):
        gt["images"].append({"id": i, "height": h, "width": w})
        for g in gts:
            rle = mask_utils.encode(np.asfortranarray(g.astype(np.uint8)))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i,
                                      "category_id": 1, "segmentation": rle, "iscrowd": 0,
                                      "area": float(g.sum()),
                                      "bbox": list(mask_utils.toBbox(rle))})
        for p, s in zip(preds, scores, strict=True):
            rle = mask_utils.encode(np.asfortranarray(p.astype(np.uint8)))
            dets.append({"image_id": i, "category_id": 1, "segmentation": rle,
                         "score": float(s)})
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dets), "segm")
    ev.params.maxDets = [100, 100, 100]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


def test_mean_ap_matches_pycocotools():
    rng = np.random.default_rng(7)
    images = [_random_image(rng) for _ in range(30)]
    ours = InstanceEvaluator()
    for gts, preds, scores in images:
        ours.add(preds, scores, gts)
    coco = _coco_map(images)
    assert 0.2 < coco < 0.95  # a case with real errors, not a trivial 0 or 1
    assert abs(ours.mean_ap() - coco) < 1e-6
