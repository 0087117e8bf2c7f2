"""Quantization-aware training (`qat`), on the tf_keras twin of the model (`keras2`): with
`keras2`, the only code that imports tf_keras, and the only code that imports
tensorflow-model-optimization."""
