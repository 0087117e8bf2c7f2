"""The only package that imports tf_keras and tensorflow-model-optimization: the Keras 3 /
tf_keras bridge (`bridge`) and quantization-aware training on it (`qat`)."""
