"""Evaluation helpers on top of mmdet3d's metrics."""
