"""Tasks: what a model is trained to do, on top of a backbone.

A task supplies everything the stages must not special-case (the stages call these and never
ask which task it is):
- `build_model(model_config, num_classes)`: the Keras 3 model, backbone and head;
  `backbone_layers(model_config)`: its backbone's layer names (fine-tuning);
  `pretrained_part(model)`: the part of it a classifier's pretrained weights load into;
- `examples(model, num_classes)`: a `pipeline.Examples`, how the data pipelines turn a split's
  (image, label) into training targets and into the truth scores compare with;
- `loss(api, train_config)`, `metrics(api)`: in `api`, keras or tf_keras (the QAT bridge);
- `monitor`, `monitor_mode`: the Keras log entry that picks the best model, and which way;
- `predictions(model)`: images -> what is scored (class probabilities; detections; masks);
  `file_outputs(outputs)`: an exported file's batch of outputs in that form;
  `scores(outputs, truths, class_names)`, `summary(metrics)`, `agreement(a, b)`,
  `plot(metrics, class_names, path_prefix, examples)`: evaluation; `headline` and
  `report_keys`: the scores export compares files by and reports;
- `evaluates_as_clients`: whether evaluation preprocesses as Android's clients do (else the
  experiment warns where the config makes them differ);
- `check_model(input_shape, output_shape, class_names)`: whether a loaded model fits;
- `served(model, api)`: the Keras model (in `api`, keras or tf_keras for QAT) the files are
  converted from (segmentation's adds a softmax); `to_tflite(model, mode, calibration)` (None:
  the export stage's converter) and `metadata(content, labels, name, description, version)`:
  the export adapter (the file, and what Android's clients read from it);
  `quantization_debugger`: whether export's per-layer error report works for it.
"""

from mobilenets.tasks.classification import Classification
from mobilenets.tasks.detection.task import Detection
from mobilenets.tasks.segmentation.task import Segmentation

TASKS = {"classification": Classification, "detection": Detection,
         "segmentation": Segmentation}


def get(config):
    """The task a `TaskConfig` names (or the name of one of `TASKS`, with its defaults)."""
    name = config if isinstance(config, str) else config.name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name](None if isinstance(config, str) else config)
