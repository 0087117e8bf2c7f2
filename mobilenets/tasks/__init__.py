"""Tasks: what a model is trained to do, on top of a backbone.

A task supplies everything the stages must not special-case (the stages call these and never
ask which task it is):
- `build_model(model_config, num_classes)`: the Keras 3 model, backbone and head;
- `target(num_classes)`: label -> the tensor the model trains against (the data pipeline's);
- `loss(api, train_config)`, `metrics(api)`: in `api`, keras or tf_keras (the QAT bridge);
- `monitor`: the Keras log entry that picks the best model;
- `scores(outputs, targets, class_names)`, `summary(metrics)`, `agreement(a, b)`,
  `plot(metrics, class_names, path_prefix)`: evaluation;
- `check_model(input_shape, output_shape, class_names)`: whether a loaded model fits;
- `metadata(content, labels, name, description, version)`: the export adapter (what Android's
  clients read from a .tflite file).

Classification is the one task today; detection and segmentation follow the same protocol.
"""

from mobilenets.tasks.classification import Classification

TASKS = {"classification": Classification()}


def get(name):
    """The task called `name` (one of `TASKS`)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]
