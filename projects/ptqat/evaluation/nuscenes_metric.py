"""``EmptySafeNuScenesMetric``: mmdet3d's ``NuScenesMetric`` that survives empty predictions.

nuscenes-devkit 1.2.0 raises ``Exception('Error: Invalid box type: None')`` when a result file
holds no box at all (``filter_eval_boxes`` inspects the first box to find the class field).
That happens for an untrained model, or a quantized one whose scores all fall below the
threshold, and it would abort a whole training or test run. This metric scores such a set the
way the evaluation defines it — every class has AP 0 and the TP errors are 1, so mAP = NDS = 0
— and logs a warning; any non-empty set goes to the devkit unchanged.

It also checks, when the runner hands it the dataset's meta (before any inference), that the
data root holds the tables of the dataset's ``metainfo.version``: the devkit only loads them
after the whole inference, so a ``v1.0-mini`` set evaluated with the default
``version='v1.0-trainval'`` would fail at the very end.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional

from mmdet3d.evaluation.metrics import NuScenesMetric
from mmdet3d.registry import METRICS
from mmengine.logging import MMLogger


@METRICS.register_module()
class EmptySafeNuScenesMetric(NuScenesMetric):
    """``NuScenesMetric`` (same arguments and outputs) that scores an empty prediction set 0."""

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        if meta is not None and not self.format_only:
            check_version_tables(self.data_root, meta.get('version'))
        self._dataset_meta = meta

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


EVAL_SETS = ('v1.0-mini', 'v1.0-trainval')  # versions with a val split NuScenesMetric evaluates


def check_version_tables(data_root: str, version: Optional[str]) -> None:
    """Raise ValueError, naming the fix, unless ``data_root/<version>/`` holds nuScenes tables.

    ``version`` is the dataset's ``metainfo.version`` (mmdet3d's default ``v1.0-trainval``).
    """
    if version not in EVAL_SETS:
        raise ValueError(f'NuScenesMetric: dataset metainfo.version={version!r}; it evaluates '
                         f'{" or ".join(EVAL_SETS)} (set metainfo=dict(version=...) on the datasets)')
    if osp.isfile(osp.join(data_root, version, 'scene.json')):
        return
    found = sorted(d for d in os.listdir(data_root) if d.startswith('v1.0-')
                   and osp.isdir(osp.join(data_root, d))) if osp.isdir(data_root) else []
    fix = ''
    if found:
        v = found[0]
        fix = (f'; the data root holds {found}: set the datasets\' metainfo version, e.g. '
               f'--cfg-options val_dataloader.dataset.metainfo.version={v} '
               f'test_dataloader.dataset.metainfo.version={v} (or metainfo = dict(version=\'{v}\') '
               'in the config), or point data_root at the set you mean')
    raise ValueError(f'NuScenesMetric: dataset metainfo.version={version!r} but '
                     f'{osp.join(data_root, version)!r} holds no nuScenes tables{fix}. Checked before '
                     'inference: the evaluation would fail only after it')
