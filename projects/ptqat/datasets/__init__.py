"""Data: the synthetic nuScenes generator and nuScenes info generation for the BEV models."""
