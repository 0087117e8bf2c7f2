"""Object detection with SSDLite (Sandler et al. 2018, section 6.2): anchors, box encoding,
matching, the loss and the model. The task (data, training, evaluation, export) is to come."""
