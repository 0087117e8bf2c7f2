"""The export stage: TFLite conversion in five modes (`convert.export_tflite`), selective
quantization and per-layer error reports (`quant_debug`), and the stage that writes, verifies
and reports a run's files (`stage`)."""
