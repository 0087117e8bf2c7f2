"""Semantic segmentation: DeepLabv3 (Sandler et al. 2018, section 6.3) and LR-ASPP (Howard et
al. 2019) heads on the backbones. The task (data, training, evaluation, export) is to come."""
