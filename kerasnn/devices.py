"""Devices and distribution: what TensorFlow sees, how it is set up, which strategy trains.

- `report()`: physical and logical devices, GPU names and memory, TF/Keras versions, whether
  oneDNN and XLA are on (CLI: ``kerasnn devices``).
- `configure(...)`: GPU memory growth, mixed precision, visible GPUs and logical CPU devices;
  must run before TensorFlow initialises its devices (a clear error otherwise).
- `strategy(name)`: a `tf.distribute.Strategy` from one word: ``"auto"``, ``"cpu"``, ``"gpu"``,
  ``"mirrored"``, ``"multi_worker"`` or ``"one_device:<device>"``.
- whether this machine runs channels_first layers: `kerasnn.data_formats`.

Build and compile the model inside ``strategy.scope()`` (`kerasnn.Recipe` and
``kerasnn train --strategy`` do it); `kerasnn.fit` then trains on every replica. The batch size
given to `fit` is the **global** batch: each of the ``strategy.num_replicas_in_sync`` replicas
gets ``batch_size / replicas`` samples per step, so the number of steps per epoch and the
gradient-noise level stay those of a single device. To keep the per-device batch instead, pass
``global_batch_size(per_replica, strategy)`` (and consider scaling the learning rate with it).
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from kerasnn._validation import close_match, invalid, positive_int

__all__ = [
    "MIXED_PRECISION",
    "STRATEGIES",
    "configure",
    "cpu_has_bf16",
    "format_report",
    "global_batch_size",
    "is_chief",
    "parse_tf_config",
    "report",
    "strategy",
]

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "one_device:<device>")
MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")
# Compute capability from which a GPU has fast float16 (tensor cores) and bfloat16 math.
_MIN_CAPABILITY = {"mixed_float16": (7, 0), "mixed_bfloat16": (8, 0)}
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic.
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _gpu_details(device: Any) -> dict[str, Any]:
    details = tf.config.experimental.get_device_details(device)
    out: dict[str, Any] = {"name": device.name, "device_name": details.get("device_name")}
    capability = details.get("compute_capability")
    out["compute_capability"] = None if capability is None else ".".join(map(str, capability))
    out["memory_growth"] = tf.config.experimental.get_memory_growth(device)
    try:
        memory = tf.config.experimental.get_memory_info(device.name.replace("physical_", ""))
        out["memory_bytes"] = {"current": memory["current"], "peak": memory["peak"]}
    except (ValueError, RuntimeError):  # not initialised / not supported on this device
        out["memory_bytes"] = None
    return out


def _onednn() -> dict[str, Any]:
    """oneDNN is on by default in TensorFlow's x86-64 Linux builds; TF_ENABLE_ONEDNN_OPTS wins."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is not None:
        enabled = value.strip().lower() not in ("0", "false", "no", "off")
        return {"enabled": enabled, "source": f"TF_ENABLE_ONEDNN_OPTS={value}"}
    default = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")
    return {"enabled": default, "source": "TensorFlow default for this platform"}


def report() -> dict[str, Any]:
    """What TensorFlow sees and how it is set up.

    Listing logical devices initialises TensorFlow's devices: call `configure` first.

    Returns:
        A JSON-ready dict: ``versions`` (python, tensorflow, keras, backend), ``physical`` and
        ``logical`` devices, ``gpus`` (name, device name, compute capability, memory growth,
        memory in use), ``tensor_float_32`` (whether float32 matmuls on Ampere+ GPUs use
        TensorFloat-32),
        ``built_with_cuda``, ``onednn`` (enabled and why), ``xla`` (built with XLA, auto-JIT
        setting), ``mixed_precision`` (Keras's global dtype policy) and ``tf_config`` (the
        parsed ``TF_CONFIG`` or `None`).

    Example:

    >>> r = report()
    >>> sorted(r)[:3]
    ['built_with_cuda', 'gpus', 'logical']
    """
    physical = tf.config.list_physical_devices()
    logical = tf.config.list_logical_devices()
    gpus = [d for d in physical if d.device_type == "GPU"]
    tf_config = os.environ.get("TF_CONFIG")
    return {
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        },
        "physical": [{"name": d.name, "type": d.device_type} for d in physical],
        "logical": [{"name": d.name, "type": d.device_type} for d in logical],
        "gpus": [_gpu_details(d) for d in gpus],
        "built_with_cuda": tf.test.is_built_with_cuda(),
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "onednn": _onednn(),
        "xla": {
            "built_with_xla": tf.test.is_built_with_xla(),
            "auto_jit": tf.config.optimizer.get_jit() or "off",
            "TF_XLA_FLAGS": os.environ.get("TF_XLA_FLAGS"),
        },
        "mixed_precision": keras.mixed_precision.global_policy().name,
        "tf_config": None if tf_config is None else parse_tf_config(tf_config),
    }


def format_report(info: dict[str, Any]) -> str:
    """`report()` as readable lines (what ``kerasnn devices`` prints)."""
    v = info["versions"]
    lines = [
        f"TensorFlow {v['tensorflow']}, Keras {v['keras']} ({v['backend']} backend), "
        f"Python {v['python']}",
        "physical devices: " + ", ".join(f"{d['name']} ({d['type']})" for d in info["physical"]),
        "logical devices:  " + ", ".join(f"{d['name']} ({d['type']})" for d in info["logical"]),
    ]
    for gpu in info["gpus"]:
        memory = gpu["memory_bytes"]
        used = "" if memory is None else f", {memory['current'] / 2**20:.0f} MiB in use"
        growth = ", memory growth on" if gpu.get("memory_growth") else ""
        lines.append(
            f"GPU {gpu['name']}: {gpu['device_name']}, compute capability "
            f"{gpu['compute_capability']}{used}{growth}"
        )
    if info["gpus"]:
        tf32 = "on" if info.get("tensor_float_32") else "off"
        lines.append(f"TensorFloat-32 for float32 matmuls: {tf32}")
    if not info["gpus"]:
        cuda = "with" if info["built_with_cuda"] else "without"
        lines.append(f"no GPU visible (TensorFlow built {cuda} CUDA)")
    onednn, xla = info["onednn"], info["xla"]
    lines.append(f"oneDNN: {'on' if onednn['enabled'] else 'off'} ({onednn['source']})")
    lines.append(
        f"XLA: {'available' if xla['built_with_xla'] else 'not built'}, auto-JIT "
        f"{xla['auto_jit']} (per model: kerasnn.compile(..., jit_compile=True))"
    )
    lines.append(f"mixed precision policy: {info['mixed_precision']}")
    if info["tf_config"] is not None:
        cfg = info["tf_config"]
        lines.append(
            f"TF_CONFIG: task {cfg['task']['type']}:{cfg['task']['index']} of "
            f"{sum(len(v) for v in cfg['cluster'].values())} in the cluster"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# configure
# --------------------------------------------------------------------------------------------
def _too_late(what: str, err: RuntimeError) -> RuntimeError:
    return RuntimeError(
        f"kerasnn.devices.configure was called too late to set {what}: TensorFlow has already "
        "initialised its devices (any tensor, model or device listing does that). Call "
        "configure(...) at the start of the program, before building models or running TF "
        f"ops. (TensorFlow: {err})"
    )


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (Linux ``/proc/cpuinfo`` flags
    ``avx512_bf16`` or ``amx_bf16``), where ``mixed_bfloat16`` can be faster than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def _check_mixed_precision(policy: str, gpus: Sequence[Any]) -> None:
    """Warns when no visible device runs `policy` fast (it still works, slowly)."""
    need = _MIN_CAPABILITY[policy]
    capable = []
    for gpu in gpus:
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability is not None and tuple(capability) >= need:
            capable.append(gpu.name)
    if capable:
        return
    if gpus:
        where = (
            f"the visible GPUs ({', '.join(g.name for g in gpus)}) have compute capability "
            f"below {need[0]}.{need[1]}"
        )
    elif policy == "mixed_bfloat16" and cpu_has_bf16():
        return  # the CPU has native bfloat16 instructions
    else:
        where = "no GPU is visible and the CPU has no native " + (
            "float16 arithmetic" if policy == "mixed_float16" else "bfloat16 instructions"
        )
    warnings.warn(
        f"Mixed precision {policy!r} requested but {where}: layers will compute in "
        f"{policy.removeprefix('mixed_')} emulated in software, usually slower than float32 "
        "and less accurate. Drop mixed_precision (or use a GPU with compute capability >= "
        f"{need[0]}.{need[1]}).",
        UserWarning,
        stacklevel=3,
    )


def configure(
    *,
    memory_growth: bool = True,
    mixed_precision: str | None = None,
    visible: Sequence[int] | str | None = None,
    logical_cpus: int | None = None,
) -> None:
    """Sets TensorFlow's device options; call it first thing, before any model or tensor.

    Args:
        memory_growth: let each visible GPU allocate memory as needed instead of grabbing it
            all at start-up. No effect without GPUs. Defaults to `True`.
        mixed_precision: ``"mixed_float16"`` (GPUs with compute capability >= 7.0) or
            ``"mixed_bfloat16"`` (GPUs >= 8.0, recent CPUs, TPUs) as Keras's global dtype
            policy, or `None` to leave float32. kerasnn's output layers stay float32. Warns when
            no visible device runs the policy natively. Defaults to `None`.
        visible: GPUs TensorFlow may use: a list of indices into the physical GPUs, ``"cpu"``
            or ``[]`` for none (CPU only), `None` to leave all. Defaults to `None`.
        logical_cpus: split the CPU into this many logical devices (to run a
            `MirroredStrategy` over several "devices" on one CPU, e.g. in tests). Defaults to
            `None` (one CPU device).

    Raises:
        ValueError: an unknown mixed-precision policy, a GPU index that does not exist, a
            non-positive `logical_cpus`.
        RuntimeError: TensorFlow has already initialised its devices and a requested setting
            would change them.

    Example:

    >>> configure(mixed_precision=None)  # nothing to change: always allowed
    """
    if mixed_precision is not None and mixed_precision not in MIXED_PRECISION:
        raise invalid(
            "mixed_precision", f"None or one of {', '.join(MIXED_PRECISION)}", mixed_precision
        )
    if logical_cpus is not None:
        positive_int("logical_cpus", logical_cpus)
    gpus = tf.config.list_physical_devices("GPU")
    if visible is not None:
        if visible == "cpu" or (not isinstance(visible, str) and len(visible) == 0):
            chosen = []
        elif isinstance(visible, str) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in visible
        ):
            raise invalid("visible", "None, 'cpu', or a list of GPU indices", visible)
        else:
            missing = [i for i in visible if not 0 <= i < len(gpus)]
            if missing:
                raise ValueError(
                    f"Received an invalid value for argument visible, expected GPU indices in "
                    f"[0, {len(gpus)}) ({len(gpus)} physical GPUs). Received: "
                    f"visible={list(visible)!r}"
                )
            chosen = [gpus[i] for i in visible]
        try:
            tf.config.set_visible_devices(chosen, "GPU")
        except RuntimeError as err:
            raise _too_late("visible devices", err) from err
        gpus = chosen
    if memory_growth:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError as err:
                raise _too_late("GPU memory growth", err) from err
    if logical_cpus is not None:
        cpu = tf.config.list_physical_devices("CPU")[0]
        config = [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)]
        try:
            tf.config.set_logical_device_configuration(cpu, config)
        except RuntimeError as err:
            raise _too_late(f"logical_cpus={logical_cpus}", err) from err
    if mixed_precision is not None:
        _check_mixed_precision(mixed_precision, gpus)
        keras.mixed_precision.set_global_policy(mixed_precision)


# --------------------------------------------------------------------------------------------
# TF_CONFIG
# --------------------------------------------------------------------------------------------
def _bad_tf_config(rule: str, text: str) -> ValueError:
    return ValueError(
        f"Received an invalid value for environment variable TF_CONFIG, expected {rule}. "
        f'Example: {{"cluster": {{"worker": ["host1:12345", "host2:12345"]}}, '
        f'"task": {{"type": "worker", "index": 0}}}}. Received: TF_CONFIG={text!r}'
    )


def parse_tf_config(text: str | None = None) -> dict[str, Any]:
    """Parses and checks a ``TF_CONFIG`` (multi-worker cluster description).

    Args:
        text: the JSON text. Defaults to the ``TF_CONFIG`` environment variable.

    Returns:
        The parsed mapping (``cluster`` of job -> ``"host:port"`` list, ``task`` type/index).

    Raises:
        ValueError: missing, not JSON, or not the shape TensorFlow expects (cluster jobs as
            lists of ``host:port``, a task whose type is a job and whose index exists).
    """
    if text is None:
        text = os.environ.get("TF_CONFIG")
        if not text:
            raise ValueError(
                "strategy='multi_worker' needs the TF_CONFIG environment variable describing "
                "the cluster and this process's task, e.g. TF_CONFIG='{\"cluster\": "
                '{"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
                '"worker", "index": 0}}\' (set on every machine, each with its own index).'
            )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise _bad_tf_config(f"JSON (error at position {err.pos}: {err.msg})", text) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise _bad_tf_config("a JSON object with a 'cluster' mapping", text)
    cluster = config["cluster"]
    if not cluster:
        raise _bad_tf_config("at least one job in 'cluster'", text)
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise _bad_tf_config(f"a non-empty list of 'host:port' for job {job!r}", text)
        for address in addresses:
            host, sep, port = str(address).rpartition(":")
            if not isinstance(address, str) or not sep or not host or not port.isdigit():
                raise _bad_tf_config(f"'host:port' addresses; job {job!r} has {address!r}", text)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise _bad_tf_config("a 'task' with 'type' and 'index'", text)
    if task["type"] not in cluster:
        raise _bad_tf_config(f"a task type among the cluster's jobs ({', '.join(cluster)})", text)
    index = task["index"]
    size = len(cluster[task["type"]])
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise _bad_tf_config(f"a task index in [0, {size}) for job {task['type']!r}", text)
    return config


# --------------------------------------------------------------------------------------------
# strategy
# --------------------------------------------------------------------------------------------
class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` works with what Keras 3 passes it.

    Two Keras 3.15 / TF 2.21 incompatibilities (tensorflow/tensorflow#72388) break `fit` under
    the plain strategy:

    - `fit` reduces the first ``(x, y)`` batch with ``strategy.reduce`` to build the model
      symbolically, but `MultiWorkerMirroredStrategy.reduce` does not accept a tuple (TF: "TODO:
      support value being a nest"): each element is reduced on its own here;
    - the train step reduces its scalar logs with ``axis=0``, which fails on a scalar ("Invalid
      reduction dimension 0 for input with 0 dimensions"): a scalar has no batch axis, so it is
      reduced across replicas only (``axis=None``), which is what ``MEAN``/``SUM`` mean for it.

    Everything else goes to TensorFlow unchanged.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:
        if isinstance(value, tuple | list | dict):
            parent = super()
            return tf.nest.map_structure(lambda v: parent.reduce(reduce_op, v, axis), value)
        if axis is not None:
            local = self.experimental_local_results(value)[0]
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                axis = None
        return super().reduce(reduce_op, value, axis)


def _logical(device_type: str) -> list[Any]:
    return tf.config.list_logical_devices(device_type)


def strategy(name: str | tf.distribute.Strategy = "auto") -> tf.distribute.Strategy:
    """A `tf.distribute.Strategy` from one word.

    Args:
        name: one of

            - ``"auto"``: `MirroredStrategy` over all GPUs when there are several, the GPU
              when there is one, the CPU otherwise;
            - ``"cpu"`` / ``"gpu"``: `OneDeviceStrategy` on the first CPU / GPU;
            - ``"mirrored"``: `MirroredStrategy` over all GPUs, or over all logical CPU devices
              when there is no GPU (see ``configure(logical_cpus=...)``);
            - ``"multi_worker"``: `MultiWorkerMirroredStrategy` over the cluster in
              ``TF_CONFIG`` (one process per machine, each with its own task index);
            - ``"one_device:<device>"``: `OneDeviceStrategy` on a named logical device, e.g.
              ``"one_device:/gpu:1"`` or ``"one_device:CPU:0"``;

            or a `tf.distribute.Strategy`, returned as is. Defaults to ``"auto"``.

    Returns:
        The strategy. Build and compile the model inside ``strategy.scope()``.

    Raises:
        ValueError: an unknown name (with a close match), ``"gpu"`` without a GPU, an unknown
            device, or a missing/malformed ``TF_CONFIG`` for ``"multi_worker"``.

    Example:

    >>> s = strategy("cpu")
    >>> s.num_replicas_in_sync
    1
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if not isinstance(name, str):
        raise invalid(
            "strategy", f"a tf.distribute.Strategy or one of {', '.join(STRATEGIES)}", name
        )
    key = name.strip()
    if key == "multi_worker":  # before anything initialises the devices
        parse_tf_config()
        try:
            return _MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            raise RuntimeError(
                "strategy('multi_worker') was called too late: TensorFlow has already run ops "
                "in this process, and MultiWorkerMirroredStrategy must be created at program "
                f"start-up, before any model, optimizer or tensor. (TensorFlow: {err})"
            ) from err
    if key.startswith("one_device:"):
        wanted = key.removeprefix("one_device:")
        normalized = wanted.lower().removeprefix("/").removeprefix("device:")
        devices = _logical("CPU") + _logical("GPU")
        for d in devices:
            if d.name.lower().removeprefix("/device:") == normalized:
                return tf.distribute.OneDeviceStrategy(d.name)
        raise ValueError(
            "Received an invalid value for argument strategy, expected one_device:<device> "
            f"with a logical device among {', '.join(d.name for d in devices)}. "
            f"Received: strategy={name!r}"
        )
    if key == "cpu":
        return tf.distribute.OneDeviceStrategy(_logical("CPU")[0].name)
    if key == "gpu":
        gpus = _logical("GPU")
        if not gpus:
            raise ValueError(
                "Received an invalid value for argument strategy, expected a device that "
                "exists: strategy='gpu' but TensorFlow sees no GPU (devices: "
                f"{', '.join(d.name for d in _logical('CPU'))}). Use 'auto' or 'cpu'. "
                f"Received: strategy={name!r}"
            )
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    if key == "mirrored":
        gpus = _logical("GPU")
        devices = gpus if gpus else _logical("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if key == "auto":
        gpus = _logical("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        if gpus:
            return tf.distribute.OneDeviceStrategy(gpus[0].name)
        return tf.distribute.OneDeviceStrategy(_logical("CPU")[0].name)
    plain = [s for s in STRATEGIES if "<" not in s]
    close = close_match(key, plain)
    hint = f" Did you mean {close!r}?" if close else ""
    raise ValueError(
        f"Received an invalid value for argument strategy, expected one of "
        f"{', '.join(STRATEGIES)}.{hint} Received: strategy={name!r}"
    )


def is_chief(s: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's results (always, except non-chief workers)."""
    resolver = getattr(s, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def global_batch_size(per_replica: int, s: tf.distribute.Strategy) -> int:
    """The global batch that gives each replica `per_replica` samples per step.

    Example:

    >>> global_batch_size(32, strategy("cpu"))
    32
    """
    positive_int("per_replica", per_replica)
    return per_replica * s.num_replicas_in_sync
