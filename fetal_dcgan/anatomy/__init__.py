"""Anatomical plausibility: segment the fetal head, fit its ellipse, measure it.

``annotations`` reads HC18-style ellipse annotations (HC18's own, or the phantom's);
``ellipse`` fits ellipses to segmentations and turns them into HC, axes and angle;
``model`` trains and loads the MONAI U-Net that segments heads (``python -m
fetal_dcgan.anatomy train``); the ``anatomy`` metric (``fetal_dcgan.metrics.anatomy``)
compares the heads of a synthetic set with those of real images.
"""
