"""Semantic segmentation: DeepLabv3 (Sandler et al. 2018, section 6.3) and LR-ASPP (Howard et
al. 2019) heads on the backbones, trained, evaluated and exported as a task (`task.py`)."""
