"""Process setup (seeds, threads, determinism, precision) and the tf.distribute strategy."""

import contextlib
import os

import keras
import tensorflow as tf

from mobilenets.errors import UserError


def setup(runtime, train):
    """Applies the runtime section's process-wide settings before any model or dataset exists
    (the dtype policy is `precision`'s, for the span of a run)."""
    if runtime.threads:
        tf.config.threading.set_intra_op_parallelism_threads(runtime.threads)
    if runtime.virtual_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * runtime.virtual_cpus)
        except RuntimeError:  # devices already initialized in this process (tests)
            if len(tf.config.list_logical_devices("CPU")) != runtime.virtual_cpus:
                raise
    keras.utils.set_random_seed(train.seed)
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def precision(policy):
    """Keras' global dtype policy `policy` ("mixed_bfloat16", ...) inside the block, and the
    caller's again after it, so that a run in a Python session leaves later models as they were."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def strategy(runtime):
    """The tf.distribute strategy named by `runtime.strategy`."""
    if runtime.strategy == "default":
        return tf.distribute.get_strategy()
    if runtime.strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if runtime.strategy == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("runtime.strategy multi_worker needs the TF_CONFIG environment "
                            "variable (cluster and task of this worker)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not runtime.tpu_address:
        raise UserError("runtime.tpu_address: set the TPU name or grpc:// address")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=runtime.tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def worker(strategy_):
    """(number of workers, this worker's index, is chief) for the strategy in use.

    The chief is the task of type "chief" or, when the cluster has none, worker 0 (TF_CONFIG's
    convention); it has index 0 and the workers follow.
    """
    if not isinstance(strategy_, tf.distribute.MultiWorkerMirroredStrategy):
        return 1, 0, True
    resolver = strategy_.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    has_chief = "chief" in jobs
    count = len(jobs.get("chief", [])) + len(jobs.get("worker", []))
    if resolver.task_type == "chief":
        return count, 0, True
    index = resolver.task_id + (1 if has_chief else 0)
    return count, index, index == 0
