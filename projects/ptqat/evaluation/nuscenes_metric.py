"""``EmptySafeNuScenesMetric``: mmdet3d's ``NuScenesMetric`` that survives empty predictions.

nuscenes-devkit 1.2.0 raises ``Exception('Error: Invalid box type: None')`` when a result file
holds no box at all (``filter_eval_boxes`` inspects the first box to find the class field).
That happens for an untrained model, or a quantized one whose scores all fall below the
threshold, and it would abort a whole training or test run. This metric scores such a set the
way the evaluation defines it — every class has AP 0 and the TP errors are 1, so mAP = NDS = 0
— and logs a warning; any non-empty set goes to the devkit unchanged.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional

from mmdet3d.evaluation.metrics import NuScenesMetric
from mmdet3d.registry import METRICS
from mmengine.logging import MMLogger


@METRICS.register_module()
class EmptySafeNuScenesMetric(NuScenesMetric):
    """``NuScenesMetric`` (same arguments and outputs) that scores an empty prediction set 0."""

    def _evaluate_single(self, result_path: str, classes: Optional[List[str]] = None,
                         result_name: str = 'pred_instances_3d') -> Dict[str, float]:
        with open(result_path) as f:
            results = json.load(f)['results']
        if any(len(boxes) for boxes in results.values()):
            return super()._evaluate_single(result_path, classes, result_name)
        MMLogger.get_current_instance().warning(
            f'{result_path}: no predicted box in any of {len(results)} samples; scored as '
            'mAP = NDS = 0 with TP errors 1 (nuscenes-devkit cannot evaluate an empty set)')
        prefix = f'{result_name}_NuScenes'
        detail = {f'{prefix}/{name}_AP_dist_{d}': 0.0
                  for name in classes or [] for d in self.eval_detection_configs.dist_ths}
        detail.update({f'{prefix}/{err}': 1.0 for err in self.ErrNameMapping.values()})
        detail[f'{prefix}/NDS'] = 0.0
        detail[f'{prefix}/mAP'] = 0.0
        return detail
