"""Synthetic nuScenes-format data set (see ``generator.generate_synthetic_nuscenes``)."""
from .generator import SyntheticNuScenesConfig, generate_synthetic_nuscenes, scene_names

__all__ = ['SyntheticNuScenesConfig', 'generate_synthetic_nuscenes', 'scene_names']
