"""Object detection with SSDLite (Sandler et al. 2018, section 6.2): anchors, box encoding,
matching, the loss, the model, COCO mAP, the exported file, and the task that joins them
(`task.Detection`)."""
