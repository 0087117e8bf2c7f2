"""The training and export sections of the detection and segmentation tests' one-epoch runs on
64x64 synthetic scenes (each test adds its task, model and data sections)."""

ONE_EPOCH = """
train:
  epochs: 1
  batch_size: 16
  optimizer: adam
  learning_rate: 0.001
  schedule: constant
export:
  modes: [float32, int8]
  calibration_samples: 8
  max_drop: 100
"""
