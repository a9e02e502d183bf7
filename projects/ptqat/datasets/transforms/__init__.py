"""Data transforms the BEV models need that mmdet3d lacks (registered in mmdet3d TRANSFORMS)."""
