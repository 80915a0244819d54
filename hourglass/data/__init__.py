"""Pose data: MPII annotation readers, the HDF5 crop cache, datasets and heatmap targets.

Kept import-free on purpose: each module is imported where it is used, so reading an
annotation file never pulls in torch datasets or albumentations.
"""
