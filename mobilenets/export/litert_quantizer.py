"""Full-integer int8 by the LiteRT Quantizer (`export.quantizer: litert`), the successor LiteRT
names for the converter's post-training quantization: it quantizes the float32 file, calibrated
on the same images as the converter's int8 file. Its file takes and gives int8 (the softmax
too); `xnnpack.rewire_int8` then gives it the phone's contract, uint8 pixels in and a float
softmax out, all of it inside XNNPACK."""

import os

from mobilenets import console


def quantize(float_content, representative_dataset):
    """The int8 bytes of a float32 .tflite file whose `serving_default` signature takes
    `image`, its ranges from the batches `representative_dataset()` yields."""
    import litert_quantizer
    from litert_quantizer import recipe

    quantizer = litert_quantizer.Quantizer(bytes(float_content))
    quantizer.load_quantization_recipe(recipe.static_wi8_ai8())
    samples = [{"image": batch[0]} for batch in representative_dataset()]
    with console.quiet_native():  # its progress bars and summary
        calibration = quantizer.calibrate({"serving_default": samples},
                                          num_threads=os.cpu_count() or 1)
        result = quantizer.quantize(calibration, enable_progress_bar=False,
                                    enable_progress_report=False)
    return bytes(result.quantized_model)
