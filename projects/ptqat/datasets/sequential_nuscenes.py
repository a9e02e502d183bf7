"""``NuScenesSequentialDataset``: nuScenes key frames with their previous key frames attached
(BEVDet4D / BEVDepth4D, upstream BEVDet dev3.0's ``img_info_prototype='bevdet4d'``).

Each sample's info gets ``adjacent``: the parsed infos (same ``parse_data_info`` as the key
frame, so ``images[cam]['img_path']`` has ``data_prefix`` joined) of the previous key frames
of the **same scene**, nearest first, one per offset in ``range(*multi_adj_frame_id_cfg)``;
``PrepareImageInputs(sequential=True)`` loads their images.

The adjacency is computed from the info fields, not from list positions: per ``scene_token``
the dataset's entries are ordered by ``frame_idx`` (the key-frame index in the scene, written by
:mod:`ptqat.datasets.nuscenes_infos`; the order of ``timestamp`` if an info lacks it), so a
sorted, filtered, subset or scene-mixed list still gives previous frames of the same scene.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmdet3d.datasets import NuScenesDataset
from mmdet3d.registry import DATASETS

SCENE_START_POLICIES = ('earliest', 'current')


def check_adj_frame_id_cfg(cfg) -> Tuple[int, ...]:
    """Validate ``multi_adj_frame_id_cfg`` (``range`` arguments of positive ints) and return
    the frame offsets ``tuple(range(*cfg))``; raise ``ValueError`` naming the bad value."""
    if isinstance(cfg, (str, bytes)) or not isinstance(cfg, Sequence) or not 1 <= len(cfg) <= 3:
        raise ValueError('multi_adj_frame_id_cfg must be a (start, stop, step) tuple of '
                         f'positive ints as for range(), got {cfg!r}')
    for v in cfg:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f'multi_adj_frame_id_cfg={tuple(cfg)!r}: {v!r} is not a positive '
                             'int (all of start, stop, step must be ints >= 1)')
    offsets = tuple(range(*(int(v) for v in cfg)))
    if not offsets:
        raise ValueError(f'multi_adj_frame_id_cfg={tuple(cfg)!r} gives no adjacent frame '
                         '(range() is empty); use e.g. (1, 2, 1) for one previous key frame')
    return offsets


@DATASETS.register_module()
class NuScenesSequentialDataset(NuScenesDataset):
    """``NuScenesDataset`` whose samples also carry their previous key frames.

    Added keys of :meth:`get_data_info` (hence of the pipeline's input):

    * ``adjacent`` (list[dict]): for each offset ``k`` in ``range(*multi_adj_frame_id_cfg)``
      (nearest first), the parsed info of the key frame ``k`` frames earlier in the same
      scene (its own ``sample_idx``, ``token``, ``images``, ``ego2global``, ``ann_info``, ...);
    * ``adjacent_tokens`` (list[str]): their sample tokens;
    * ``adjacent_sample_idx`` (list[int]): their indices in this dataset.

    Frame ``k`` earlier means the entry of the same scene with the largest ``frame_idx`` that
    is ``<= frame_idx - k`` (with the full info list: exactly ``frame_idx - k``, i.e. ``k``
    steps along the info's ``prev`` chain; if that frame was filtered out, the previous one
    still present). Where no such frame exists (scene start):

    * ``scene_start='earliest'`` (default): the earliest frame of the scene present in the
      dataset is repeated (the current frame itself at ``frame_idx == 0``);
    * ``scene_start='current'``: the current frame is used, exactly as upstream BEVDet's
      ``get_adj_info`` (``index - k`` in the timestamp-sorted list; the current info if that
      one is from another scene).

    Both agree for ``multi_adj_frame_id_cfg=(1, 2, 1)`` (BEVDepth4D: only frame 0 lacks a
    previous frame, and then the earliest frame is the current one); for longer windows the
    upstream rule makes e.g. frame 1's offsets 2.. point to frame 1 rather than frame 0.
    A sample is never paired with a frame of another scene.

    Args:
        multi_adj_frame_id_cfg (tuple[int]): ``range`` arguments of the frame offsets,
            positive ints. ``(1, 2, 1)``: one previous key frame (BEVDepth4D);
            ``(1, 9, 1)``: 8 (the long-term variant).
        scene_start (str): ``'earliest'`` or ``'current'``, see above.
        **kwargs: :class:`mmdet3d.datasets.NuScenesDataset` arguments.
    """

    def __init__(self,
                 *args,
                 multi_adj_frame_id_cfg: Sequence[int] = (1, 2, 1),
                 scene_start: str = 'earliest',
                 **kwargs):
        self.adj_frame_offsets = check_adj_frame_id_cfg(multi_adj_frame_id_cfg)
        self.multi_adj_frame_id_cfg = tuple(int(v) for v in multi_adj_frame_id_cfg)
        if scene_start not in SCENE_START_POLICIES:
            raise ValueError(f'scene_start={scene_start!r}; allowed: {SCENE_START_POLICIES}')
        self.scene_start = scene_start
        self._frame_records: Optional[List[tuple]] = None
        self._adjacent_table: Optional[np.ndarray] = None
        super().__init__(*args, **kwargs)

    @property
    def num_frames(self) -> int:
        """Frames per sample: the key frame + the adjacent ones."""
        return 1 + len(self.adj_frame_offsets)

    # ------------------------------------------------------------------ frame index
    @staticmethod
    def _frame_record(info: dict) -> tuple:
        if info.get('scene_token') is None:
            raise KeyError('NuScenesSequentialDataset needs `scene_token` in every info (token '
                           f'{info.get("token")!r} lacks it); make the info files with '
                           'tools/create_data.py (ptqat.datasets.nuscenes_infos)')
        frame_idx = info.get('frame_idx', None)
        return (info['token'], info['scene_token'],
                None if frame_idx is None else int(frame_idx), float(info.get('timestamp', 0)))

    def _serialize_data(self):
        # the unserialized list is at hand here: record the frame keys before it is cleared
        self._frame_records = [self._frame_record(info) for info in self.data_list]
        self._adjacent_table = None
        return super()._serialize_data()

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        self._adjacent_table = None
        if not self.serialize_data:
            self._frame_records = None
        self._build_adjacent_table()  # once, in the main process (not per worker)

    def get_subset_(self, indices) -> None:
        super().get_subset_(indices)
        self._frame_records, self._adjacent_table = None, None

    def get_subset(self, indices):
        sub = super().get_subset(indices)
        sub._frame_records, sub._adjacent_table = None, None
        return sub

    def _build_adjacent_table(self) -> np.ndarray:
        """``(len(self), num_adj)`` int64 dataset indices of the adjacent frames."""
        if self._adjacent_table is not None:
            return self._adjacent_table
        n = len(self)
        records = self._frame_records
        if records is None or len(records) != n:
            records = [self._frame_record(super(NuScenesSequentialDataset, self)
                                          .get_data_info(i)) for i in range(n)]
            self._frame_records = records
        by_scene = defaultdict(list)
        for i, rec in enumerate(records):
            by_scene[rec[1]].append(i)
        table = np.empty((n, len(self.adj_frame_offsets)), dtype=np.int64)
        for members in by_scene.values():
            # one entry per sample token (a duplicated sample keeps its first index)
            first = {}
            for i in members:
                first.setdefault(records[i][0], i)
            uniq = list(first.values())
            if any(records[i][2] is None for i in uniq):  # no frame_idx: timestamp rank
                uniq.sort(key=lambda i: (records[i][3], i))
                frame_of = {i: r for r, i in enumerate(uniq)}
            else:
                uniq.sort(key=lambda i: (records[i][2], records[i][3], i))
                frame_of = {i: records[i][2] for i in uniq}
            frames = [frame_of[i] for i in uniq]
            for i in members:
                f = frame_of[first[records[i][0]]]
                for col, k in enumerate(self.adj_frame_offsets):
                    j = bisect.bisect_right(frames, f - k) - 1
                    if j >= 0:
                        table[i, col] = uniq[j]
                    else:
                        table[i, col] = uniq[0] if self.scene_start == 'earliest' else i
        self._adjacent_table = table
        return table

    def adjacent_indices(self, idx: int) -> List[int]:
        """Dataset indices of the adjacent frames of sample ``idx``, nearest first."""
        if not self._fully_initialized:
            self.full_init()
        if idx < 0:
            idx += len(self)
        return [int(j) for j in self._build_adjacent_table()[idx]]

    # ------------------------------------------------------------------ infos
    def get_data_info(self, idx: int) -> dict:
        """The parsed info of sample ``idx`` with ``adjacent`` (see the class doc)."""
        info = super().get_data_info(idx)
        adj_idx = self.adjacent_indices(idx)
        info['adjacent'] = [super(NuScenesSequentialDataset, self).get_data_info(j)
                            for j in adj_idx]
        info['adjacent_tokens'] = [a['token'] for a in info['adjacent']]
        info['adjacent_sample_idx'] = adj_idx
        return info

    def _key_frame_info(self, idx: int) -> dict:
        return super().get_data_info(idx)

    def get_ann_info(self, index: int) -> dict:
        # no need to decode the adjacent frames for the annotations (evaluation, CBGS)
        info = self._key_frame_info(index)
        return info['ann_info'] if 'ann_info' in info else self.parse_ann_info(info)

    def get_cat_ids(self, idx: int):
        return set(self._key_frame_info(idx)['ann_info']['gt_labels_3d'].tolist())
