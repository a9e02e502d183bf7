"""PTQAT for MMDetection3D."""
__version__ = '0.1.0'
