"""Where a nuScenes detection score (NDS) comes from, and an NDS that ignores recall-threshold jumps.

The nuScenes detection score is ``NDS = (5 mAP + sum_k (1 - min(1, mTP_k))) / 10`` over the five
mean true-positive errors ``mTP_k`` (mATE, mASE, mAOE, mAVE, mAAE), each the mean over the classes
of that class's error. A class whose recall never reaches the devkit's ``min_recall`` (0.1) gets
every TP error set to exactly 1 (the worst value). So when a weak model's rare class (a trailer,
a motorcycle) crosses 10 % recall, its five errors fall from 1 to their real values at once, and
NDS jumps by up to ~0.05 while mAP hardly moves. Between quantized variants of a weak model that
step, not the quantization, can decide the ranking.

This module parses the flat metric dict mmdet3d's ``NuScenesMetric`` returns (and
``tools/test.py --out`` writes), lists the classes below the recall threshold, recomputes NDS from
the per-class errors (a check that the dict is complete), and gives, for a set of runs, the
*common-class NDS*: the same formula with each mTP_k averaged over only the classes that pass the
threshold in every run of the set. It is a diagnostic for comparing runs, not the nuScenes NDS.
No mm* import: the inputs are plain dicts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

# nuScenes detection classes (nuscenes-devkit detection config, in its order)
DETECTION_CLASSES = ('car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
                     'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone')
# per-class TP error name -> the mean's name in NuScenesMetric's output
TP_ERRORS = {'trans_err': 'mATE', 'scale_err': 'mASE', 'orient_err': 'mAOE', 'vel_err': 'mAVE',
             'attr_err': 'mAAE'}
MEAN_AP_WEIGHT = 5.0  # nuscenes-devkit detection_cvpr_2019 config
RECOMPUTE_TOLERANCE = 1e-3  # the per-class errors are rounded to 4 decimals by NuScenesMetric


@dataclass(frozen=True)
class NDSBreakdown:
    """One run's detection metrics, split into what NDS is made of.

    Attributes:
        nds: the reported NDS.
        mean_ap: the reported mAP.
        mean_tp: reported mean TP errors by name (``mATE`` ... ``mAAE``), metres / radians / m/s /
            1 - IoU / 1 - accuracy as in the devkit.
        class_tp: ``class -> error name ('trans_err' ...) -> value``; NaN where the devkit leaves
            the error undefined (a traffic cone's orientation, a barrier's velocity).
        below_min_recall: the classes whose every defined TP error is exactly 1.0: their recall
            stayed under the devkit's ``min_recall``, so the errors are the penalty, not measured.
    """
    nds: float
    mean_ap: float
    mean_tp: Dict[str, float]
    class_tp: Dict[str, Dict[str, float]]
    below_min_recall: Tuple[str, ...]

    @property
    def recomputed_nds(self) -> float:
        """NDS from the per-class errors over all classes (as the devkit computes it)."""
        return nd_score(self.mean_ap, _mean_tp(self.class_tp, DETECTION_CLASSES))


def nd_score(mean_ap: float, mean_tp: Mapping[str, float]) -> float:
    """``(5 mAP + sum_k max(0, 1 - mTP_k)) / (5 + K)``; K = the number of mean TP errors given."""
    tp_scores = [max(0.0, 1.0 - value) for value in mean_tp.values()]
    return (MEAN_AP_WEIGHT * mean_ap + sum(tp_scores)) / (MEAN_AP_WEIGHT + len(tp_scores))


def find_prefix(metrics: Mapping[str, float]) -> str:
    """The key prefix of the one NDS in ``metrics`` (``'NuScenes metric/pred_instances_3d_NuScenes/'``
    for mmdet3d's NuScenesMetric, ``''`` for bare keys).

    Raises:
        ValueError: no key ends with ``NDS``, or several do (then name one with ``prefix``).
    """
    prefixes = sorted(key[:-len('NDS')] for key in metrics
                      if key == 'NDS' or key.endswith('/NDS'))
    if not prefixes:
        raise ValueError('no NDS in the metrics: expected a key "NDS" or ".../NDS" as '
                         "mmdet3d's NuScenesMetric writes (got keys such as "
                         f'{sorted(metrics)[:5]})')
    if len(prefixes) > 1:
        raise ValueError(f'several NDS in the metrics, under the prefixes {prefixes}: choose one')
    return prefixes[0]


def parse_metrics(metrics: Mapping[str, float], prefix: Optional[str] = None) -> NDSBreakdown:
    """Split a flat NuScenesMetric dict into an :class:`NDSBreakdown`.

    Args:
        metrics: ``{'<prefix>NDS': ..., '<prefix>mAP': ..., '<prefix>car_trans_err': ..., ...}``.
        prefix: the key prefix; found with :func:`find_prefix` when None.

    An empty prediction set as ``EmptySafeNuScenesMetric`` scores it (NDS 0, mean errors 1, no
    per-class errors) gives every class below the recall threshold.

    Raises:
        ValueError: a key the NDS needs is missing (named), or the per-class errors do not
            reproduce the reported NDS within 1e-3 (the dict is not nuScenes' ten-class NDS).
    """
    prefix = find_prefix(metrics) if prefix is None else prefix
    missing = [prefix + name for name in ('NDS', 'mAP', *TP_ERRORS.values())
               if prefix + name not in metrics]
    class_keys = [f'{prefix}{cls}_{err}' for cls in DETECTION_CLASSES for err in TP_ERRORS]
    if _is_empty_set(metrics, prefix, class_keys) and not missing:
        class_tp = {cls: dict.fromkeys(TP_ERRORS, 1.0) for cls in DETECTION_CLASSES}
    else:
        missing += [key for key in class_keys if key not in metrics]
        if missing:
            raise ValueError(f'the metrics lack {len(missing)} key(s) the NDS breakdown needs, '
                             f'e.g. {missing[:3]} (prefix {prefix!r})')
        class_tp = {cls: {err: float(metrics[f'{prefix}{cls}_{err}']) for err in TP_ERRORS}
                    for cls in DETECTION_CLASSES}
    breakdown = NDSBreakdown(
        nds=float(metrics[prefix + 'NDS']), mean_ap=float(metrics[prefix + 'mAP']),
        mean_tp={name: float(metrics[prefix + name]) for name in TP_ERRORS.values()},
        class_tp=class_tp,
        below_min_recall=tuple(cls for cls in DETECTION_CLASSES if _is_penalty(class_tp[cls])))
    if abs(breakdown.recomputed_nds - breakdown.nds) > RECOMPUTE_TOLERANCE:
        raise ValueError(f'the per-class TP errors give NDS {breakdown.recomputed_nds:.4f}, the '
                         f'metrics report {breakdown.nds:.4f}: not the ten-class nuScenes NDS')
    return breakdown


def common_classes(breakdowns: Sequence[NDSBreakdown]) -> Tuple[str, ...]:
    """The classes above the recall threshold in every run, in the devkit's class order."""
    return tuple(cls for cls in DETECTION_CLASSES
                 if all(cls not in b.below_min_recall for b in breakdowns))


def common_class_nds(breakdowns: Sequence[NDSBreakdown]) -> Tuple[Tuple[str, ...], List[float]]:
    """NDS of each run with the mean TP errors taken over the classes every run detects.

    mAP stays the reported one (it has no threshold step). A TP error no common class defines
    (e.g. only traffic cones are common: no orientation error) is left out of the sum and the
    denominator, as NDS does with an undefined error.

    Returns:
        (the common classes, one score per run in the order given).

    Raises:
        ValueError: no run given, or no class reaches the recall threshold in every run.
    """
    if not breakdowns:
        raise ValueError('common_class_nds needs at least one run')
    classes = common_classes(breakdowns)
    if not classes:
        raise ValueError('no class reaches the recall threshold in every run: there is no '
                         'common class to compare TP errors on')
    return classes, [nd_score(b.mean_ap, _mean_tp(b.class_tp, classes)) for b in breakdowns]


def _is_empty_set(metrics: Mapping[str, float], prefix: str, class_keys: Sequence[str]) -> bool:
    """An empty prediction set as EmptySafeNuScenesMetric scores it: no per-class TP error,
    NDS 0 and every mean TP error 1 (every class is below the recall threshold)."""
    return (not any(key in metrics for key in class_keys) and metrics.get(prefix + 'NDS') == 0.0
            and all(metrics.get(prefix + name) == 1.0 for name in TP_ERRORS.values()))


def _is_penalty(errors: Mapping[str, float]) -> bool:
    defined = [value for value in errors.values() if not math.isnan(value)]
    return bool(defined) and all(value == 1.0 for value in defined)


def _mean_tp(class_tp: Mapping[str, Mapping[str, float]],
             classes: Sequence[str]) -> Dict[str, float]:
    """Mean of each TP error over ``classes``, NaNs skipped; errors with no value are dropped."""
    means = {}
    for err in TP_ERRORS:
        values = [class_tp[cls][err] for cls in classes if not math.isnan(class_tp[cls][err])]
        if values:
            means[TP_ERRORS[err]] = sum(values) / len(values)
    return means
