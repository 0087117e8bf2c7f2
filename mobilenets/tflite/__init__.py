"""The .tflite file: running it in LiteRT, its XNNPACK coverage and int8 graph edits, and the
Android metadata it carries. Knows nothing of configs or stages."""
