"""Synthetic nuScenes-format data set (see ``generator.generate_synthetic_nuscenes``)."""
from .generator import SyntheticNuScenesConfig, generate_synthetic_nuscenes, scene_names, scene_seed

__all__ = ['SyntheticNuScenesConfig', 'generate_synthetic_nuscenes', 'scene_names', 'scene_seed']
