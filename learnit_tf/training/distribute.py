"""Running meta-training on several devices, workers or a TPU with `tf.distribute`.

Three pieces, used by `learnit_tf.training.meta_train` and `scripts/meta_train.py`:

- `get_distribution_strategy(name, ...)`: a strategy from a flag value
  (default | one_device | mirrored | multi_worker_mirrored | tpu), in the manner of
  TF Model Garden's factory, failing fast and clearly on bad input (an unknown name,
  GPUs that are not there, a TPU address that does not resolve or answer).
- `distribute_meta_batches(strategy, make_batches, global_batch_size, skip)`: splits
  every *global* meta-batch over the replicas with
  `strategy.distribute_datasets_from_function`, so the union of the replicas'
  shares at each step is exactly the meta-batch one device would see, whatever the
  device count.
- `PreemptionWatcher`: checkpoint-and-stop on a preemption notice, through
  `tf.distribute.experimental.PreemptionCheckpointHandler` where the strategy
  supports it (mirrored, multi-worker mirrored, one device) and a SIGTERM flag
  otherwise (and in addition wherever the handler does not itself catch SIGTERM,
  e.g. on Cloud TPU VMs, where it is a no-op).

Helpers: `configure_cpu_devices` (logical CPU devices, to run several replicas
without accelerators), `check_grpc_endpoint`, `worker_dir` (where a multi-worker
process writes), `cluster_failure_message` (a clear message when a worker of the
cluster fails), `per_replica_batch_size`, `is_remote_path`.

Example:

>>> strategy = get_distribution_strategy("one_device")
>>> strategy.num_replicas_in_sync
1
"""

import contextlib
import os
import signal
import socket
import urllib.parse

import tensorflow as tf

STRATEGY_NAMES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
_MIRRORED_ALL_REDUCE = ("nccl", "hierarchical_copy")
_MULTI_WORKER_ALL_REDUCE = ("ring", "nccl")


def is_remote_path(path):
    """True for paths that need `tf.io.gfile` (gs://, s3://, hdfs://, ...)."""
    return "://" in str(path)


def configure_cpu_devices(num_devices):
    """Splits the host CPU into `num_devices` logical devices.

    Lets CPU-only machines run multi-replica strategies (tests, debugging). Must be
    called before TensorFlow initializes its devices (before any op runs).

    Args:
        num_devices: number of logical CPU devices (>= 1).

    Raises:
        ValueError: `num_devices` < 1.
        RuntimeError: TensorFlow's devices are already initialized differently.
    """
    num_devices = int(num_devices)
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}.")
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as e:
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} logical devices: TensorFlow is already "
            "initialized. Call configure_cpu_devices (or pass --cpu_devices) before any "
            f"TensorFlow op runs. ({e})") from e


# HTTP/2 client connection preface followed by an empty SETTINGS frame (RFC 7540 §3.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_HTTP2_SETTINGS = 0x04


def check_grpc_endpoint(address, timeout=10.0):
    """Raises ConnectionError unless `address` answers like a gRPC server within `timeout`.

    TensorFlow's `experimental_connect_to_cluster` blocks indefinitely on a host
    that accepts TCP but never speaks gRPC (and for minutes on one that drops
    packets), so the TPU worker is probed first: a TCP connection plus the HTTP/2
    preface, to which every gRPC server answers with a SETTINGS frame.

    Args:
        address: "host:port" or "grpc://host:port".
        timeout: seconds for the connection and for the answer.
    """
    netloc = urllib.parse.urlparse(address).netloc if "://" in address else address
    host, _, port = netloc.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"TPU worker address {address!r} is not of the form host:port.")
    hint = ("Check --tpu (a TPU name, 'local' on a TPU VM, or grpc://host:8470), that the TPU is "
            "READY (`gcloud compute tpus tpu-vm list`) and reachable from this machine.")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_HTTP2_PREFACE)
            header = b""
            while len(header) < 9:
                chunk = sock.recv(9 - len(header))
                if not chunk:
                    raise ConnectionError("the connection was closed without an answer")
                header += chunk
    except (OSError, ConnectionError) as e:
        raise ConnectionError(
            f"TPU worker {netloc} did not accept a connection and answer within {timeout:g} s "
            f"({e}). {hint}") from e
    if header[3] != _HTTP2_SETTINGS:
        raise ConnectionError(f"TPU worker {netloc} answered but is not a gRPC server. {hint}")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def tpu_initialize(tpu_address=None, connect_timeout=10.0):
    """Resolves, connects to and initializes a Cloud TPU; returns the cluster resolver.

    Args:
        tpu_address: a TPU name, "local" (the TPU attached to this TPU VM; the default
            when neither this nor the `TPU_NAME` environment variable is set) or a
            `grpc://host:port` address.
        connect_timeout: seconds to wait for each remote TPU worker to answer before
            failing (instead of hanging in `experimental_connect_to_cluster`).

    Raises:
        ValueError: the address does not resolve to a TPU.
        ConnectionError: a TPU worker does not answer.
        RuntimeError: no TPU devices after initialization.
    """
    if tpu_address is None:
        tpu_address = os.environ.get("TPU_NAME", "local")
    resolver_cls = tf.distribute.cluster_resolver.TPUClusterResolver
    try:
        resolver = resolver_cls(tpu=tpu_address)
    except Exception as e:  # The resolver raises URLError, ValueError, HttpError...
        raise ValueError(
            f"Could not resolve TPU {tpu_address!r}: {type(e).__name__}: {e}. Pass --tpu=local "
            "on a TPU VM, the TPU's name (with gcloud credentials and zone), or "
            "grpc://host:8470.") from e
    if tpu_address not in ("", "local"):
        workers = resolver.cluster_spec().as_dict()
        addresses = [a for job in workers.values() for a in
                     (job.values() if isinstance(job, dict) else job)]
        if not addresses:
            raise ValueError(f"TPU {tpu_address!r} resolved to no worker addresses.")
        for address in addresses:
            check_grpc_endpoint(address, connect_timeout)
        try:
            tf.config.experimental_connect_to_cluster(resolver)
        except (tf.errors.OpError, ValueError) as e:
            raise ConnectionError(f"Could not connect to TPU {tpu_address!r} at {addresses}: "
                                  f"{_first_line(e)}") from e
    try:
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (tf.errors.OpError, RuntimeError) as e:
        raise RuntimeError(
            f"No usable TPU at {tpu_address!r}: {_first_line(e)}. On a Cloud TPU VM use "
            "--tpu=local; elsewhere use --strategy=mirrored or default.") from e
    return resolver


def get_distribution_strategy(name="default", tpu_address=None, num_gpus=None,
                              all_reduce_alg=None, num_packs=1, connect_timeout=10.0,
                              collective_timeout=None):
    """A `tf.distribute.Strategy` from its flag name.

    Args:
        name: "default" (no distribution: the default strategy), "one_device" (the
            first GPU, else the CPU), "mirrored" (all local GPUs, or `num_gpus` of
            them; on a machine without GPUs, all logical CPU devices, see
            `configure_cpu_devices`), "multi_worker_mirrored" (workers from the
            `TF_CONFIG` environment variable) or "tpu".
        tpu_address: with "tpu": TPU name, "local" or grpc://host:port (see
            `tpu_initialize`).
        num_gpus: with "mirrored"/"one_device": how many GPUs to use (default: all;
            0 forces the CPU).
        all_reduce_alg: "mirrored": "nccl" or "hierarchical_copy"; "multi_worker_mirrored":
            "ring" or "nccl"; None picks TensorFlow's default.
        num_packs: gradient packing for the "mirrored" all-reduce algorithms.
        connect_timeout: seconds to wait for a remote TPU worker.
        collective_timeout: "multi_worker_mirrored": seconds after which a collective
            (the meta-gradient all-reduce, a variable broadcast) whose peers have not
            all joined fails with DeadlineExceededError instead of waiting forever
            (a live but stalled worker). None: no timeout. A crashed or killed worker
            needs no timeout: the coordination service notices its missing heartbeats
            within seconds. Set it above the longest gap between workers reaching the
            same collective (data preparation, first-step compilation).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: unknown `name`, bad `all_reduce_alg`, more GPUs asked than present,
            `tpu_address` with a non-TPU strategy, or an unresolvable TPU.
        ConnectionError / RuntimeError: the TPU does not answer / has no devices.

    Example:

    >>> get_distribution_strategy("default").num_replicas_in_sync
    1
    """
    name = "default" if name is None else str(name).lower()
    if name not in STRATEGY_NAMES:
        raise ValueError(f"Unknown distribution strategy {name!r}; expected one of "
                         f"{STRATEGY_NAMES}.")
    if collective_timeout is not None and name != "multi_worker_mirrored":
        raise ValueError(f"collective_timeout applies to multi_worker_mirrored only, not "
                         f"{name!r}.")
    if tpu_address and name != "tpu":
        raise ValueError(f"A TPU address ({tpu_address!r}) was given with strategy {name!r}; "
                         "use --strategy=tpu to train on a TPU.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "tpu":
        resolver = tpu_initialize(tpu_address, connect_timeout)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker_mirrored":
        if all_reduce_alg not in (None,) + _MULTI_WORKER_ALL_REDUCE:
            raise ValueError(f"all_reduce_alg for multi_worker_mirrored must be one of "
                             f"{_MULTI_WORKER_ALL_REDUCE} or None, got {all_reduce_alg!r}.")
        implementation = {
            None: tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[all_reduce_alg]
        if collective_timeout is not None and not collective_timeout > 0:
            raise ValueError(f"collective_timeout must be > 0 seconds or None, got "
                             f"{collective_timeout!r}.")
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation, timeout_seconds=collective_timeout))

    gpus = tf.config.list_logical_devices("GPU")
    if num_gpus is not None:
        num_gpus = int(num_gpus)
        if num_gpus < 0 or num_gpus > len(gpus):
            raise ValueError(f"num_gpus={num_gpus} requested but {len(gpus)} GPU(s) are "
                             "visible.")
        gpus = gpus[:num_gpus]
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    # name == "mirrored"
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    if all_reduce_alg is None:
        cross_device_ops = None
    elif all_reduce_alg == "nccl":
        cross_device_ops = tf.distribute.NcclAllReduce(num_packs=num_packs)
    elif all_reduce_alg == "hierarchical_copy":
        cross_device_ops = tf.distribute.HierarchicalCopyAllReduce(num_packs=num_packs)
    else:
        raise ValueError(f"all_reduce_alg for mirrored must be one of {_MIRRORED_ALL_REDUCE} "
                         f"or None, got {all_reduce_alg!r}.")
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)


def worker_dir(strategy, model_dir):
    """Where this process writes: `model_dir` on the chief, a scratch directory elsewhere.

    With MultiWorkerMirroredStrategy every worker takes part in saving (variables
    are read collectively) but only the chief's files are kept; the others write to
    `model_dir/.scratch_<task_type>_<task_id>`, which the caller deletes when training
    ends. All workers restore from the chief's checkpoints.

    The scratch directory is emptied and created here, at the start of every run: a
    worker killed mid-run leaves checkpoints in it that may be a step ahead of the
    chief's, and `PreemptionCheckpointHandler` restores the latest checkpoint of the
    manager it is given (the scratch one on a non-chief worker), which would
    silently overwrite the chief's state restored on that worker.
    """
    if strategy.extended.should_checkpoint:
        return model_dir
    resolver = strategy.cluster_resolver
    scratch = os.path.join(model_dir, f".scratch_{resolver.task_type}_{resolver.task_id}")
    if tf.io.gfile.exists(scratch):
        tf.io.gfile.rmtree(scratch)
    tf.io.gfile.makedirs(scratch)
    return scratch


# Errors with which a collective op reports a peer that crashed, is unreachable or
# did not join in time (heartbeat loss, refused connection, collective timeout).
_CLUSTER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                   tf.errors.AbortedError, tf.errors.CancelledError, tf.errors.InternalError)


def cluster_failure_message(error, strategy, model_dir=None):
    """A one-paragraph explanation of a multi-worker failure, or None if `error` is not one.

    A worker of a MultiWorkerMirroredStrategy cluster that is killed stops sending
    heartbeats to the coordination service (hosted by worker 0), which aborts the
    collectives of every other worker within seconds; a worker that is alive but
    stalls is caught by the collective timeout (`collective_timeout` of
    `get_distribution_strategy`). Either way TensorFlow raises an `OpError` with a
    long traceback; this names the process, the reason TensorFlow gave and what to do.

    Args:
        error: the exception raised by a training step or a checkpoint.
        strategy: the strategy in use (None or not multi-worker: returns None).
        model_dir: the run's model directory, named in the advice to restart.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    if not isinstance(error, _CLUSTER_ERRORS):
        return None
    resolver = strategy.cluster_resolver
    if resolver.task_type:
        who = (f"{resolver.task_type} {resolver.task_id} of "
               f"{resolver.cluster_spec().num_tasks(resolver.task_type)}")
    else:  # No TF_CONFIG: a cluster of this one process.
        who = "the only worker"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = " ".join(line for line in lines[:4]
                      if not line.startswith("The error could be from a previous operation"))
    reason = reason.split("}} ", 1)[-1]  # Drop TensorFlow's {{function_node ...}} prefix.
    where = f" from the chief's last checkpoint in {model_dir}/checkpoints" if model_dir else ""
    return (f"{who}: the cluster failed "
            f"({type(error).__name__}: {reason}). Another worker crashed, was killed or "
            "stalled; this worker cannot continue alone. Restart all workers with the same "
            f"command to resume{where}.")


def per_replica_batch_size(strategy, global_batch_size):
    """Global meta-batch // replicas, with a clear error if it does not divide."""
    replicas = strategy.num_replicas_in_sync
    global_batch_size = int(global_batch_size)
    if global_batch_size < replicas or global_batch_size % replicas:
        raise ValueError(
            f"meta_batch_size={global_batch_size} must be a positive multiple of the "
            f"{replicas} replicas of {type(strategy).__name__} (every replica adapts an equal "
            "share of the global meta-batch).")
    return global_batch_size // replicas


def distribute_meta_batches(strategy, make_batches, global_batch_size, skip=0):
    """Splits a stream of global meta-batches over the strategy's replicas.

    Every input pipeline (one per worker/host) builds the same deterministic stream
    of global meta-batches, skips the `skip` already consumed (resumption: a
    distributed iterator cannot be saved in a checkpoint), keeps its replicas' part
    of each global batch and hands one equal share to each local replica. The
    union of the shares at a step is the global meta-batch, so training does not
    depend on the device count.

    Args:
        strategy: a `tf.distribute.Strategy`.
        make_batches: callable() -> `tf.data.Dataset` of global meta-batches (dicts of
            tensors with a static leading dimension `global_batch_size`).
        global_batch_size: the global meta-batch size.
        skip: global batches to skip (the step to resume at).

    Returns:
        A distributed dataset whose elements are per-replica values.
    """
    per_replica = per_replica_batch_size(strategy, global_batch_size)
    skip = int(skip)

    def dataset_fn(input_context):
        local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        start = input_context.input_pipeline_id * local * per_replica
        ds = make_batches()
        sizes = {int(t.shape[0]) if t.shape.rank else None
                 for t in tf.nest.flatten(ds.element_spec)}
        if sizes != {int(global_batch_size)}:
            raise ValueError(f"make_batches() must yield meta-batches with static leading "
                             f"dimension {global_batch_size}, got {sizes}.")
        if skip:
            ds = ds.skip(skip)

        def split(batch):
            # Static slice and reshape: (local * per_replica, ...) -> (local, per_replica, ...).
            return tf.nest.map_structure(
                lambda t: tf.reshape(t[start:start + local * per_replica],
                                     [local, per_replica] + t.shape.as_list()[1:]), batch)

        # Consecutive elements go to consecutive local replicas.
        ds = ds.map(split).flat_map(tf.data.Dataset.from_tensor_slices)
        return ds.prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_fn)


class _Preempted(Exception):
    """Raised by the PreemptionCheckpointHandler's exit_fn instead of exiting the process."""


class PreemptionWatcher(contextlib.AbstractContextManager):
    """Checkpoint-and-stop at a step boundary when the job is about to be preempted.

    With MirroredStrategy, MultiWorkerMirroredStrategy or OneDeviceStrategy it uses
    `tf.distribute.experimental.PreemptionCheckpointHandler` (all workers agree on
    the step to save at; on GCE GPU VMs it also watches maintenance events). A
    SIGTERM flag handler covers every other case (default strategy, TPU, GCE CPU/TPU
    VMs where the handler is a no-op). The previous SIGTERM handler is restored on
    exit. The handler's own exit is replaced by a return so the caller can finish
    (flush logs) and the process exits normally.

    Args:
        strategy: the `tf.distribute.Strategy` in use.
        manager: the `tf.train.CheckpointManager` that saves the training state. The
            handler attaches a small counter variable to its checkpoint, so restore
            earlier checkpoints with `assert_existing_objects_matched()`.
        before_save: optional callable run right before a preemption checkpoint is
            saved (e.g. flushing a log).
        use_handler: set False to force the plain SIGTERM flag.

    Example:

    >>> step = tf.Variable(0)
    >>> manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step), "ckpt", 1)
    >>> with PreemptionWatcher(tf.distribute.get_strategy(), manager,
    ...                        use_handler=False) as watcher:
    ...     while int(step) < 3:
    ...         _ = step.assign_add(1)  # one training step
    ...         if watcher.save_if_preempted(int(step)):
    ...             break
    >>> int(step), manager.latest_checkpoint  # no SIGTERM came: nothing saved
    (3, None)
    """

    _HANDLER_STRATEGIES = (tf.distribute.MirroredStrategy,
                           tf.distribute.MultiWorkerMirroredStrategy,
                           tf.distribute.OneDeviceStrategy)

    def __init__(self, strategy, manager, before_save=None, use_handler=True):
        self.strategy = strategy
        self.manager = manager
        self.before_save = before_save
        self.requested = False
        self.handler = None
        self._use_handler = use_handler and isinstance(strategy, self._HANDLER_STRATEGIES)
        self._previous = None
        self._own_signal = False

    def __enter__(self):
        try:
            self._previous = signal.getsignal(signal.SIGTERM)
        except ValueError:
            self._previous = None
        if self._use_handler:
            try:
                self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                    getattr(self.strategy, "cluster_resolver", None), self.manager,
                    termination_config=tf.distribute.experimental.TerminationConfig(
                        exit_fn=self._exit, save_fn=self._save))
            except ValueError:  # signal handlers only work in the main thread
                self.handler = None
        handler_owns_sigterm = (self.handler is not None
                                and signal.getsignal(signal.SIGTERM) is not self._previous)
        if not handler_owns_sigterm:
            try:
                signal.signal(signal.SIGTERM, self._on_sigterm)
                self._own_signal = True
            except ValueError:  # Not in the main thread: nothing to install.
                self._own_signal = False
        return self

    @staticmethod
    def _exit():
        raise _Preempted()

    def _save(self, *args, **kwargs):
        if self.before_save is not None:
            self.before_save()
        return self.manager.save(*args, **kwargs)

    def _on_sigterm(self, signum, frame):
        del signum, frame
        self.requested = True

    def save_if_preempted(self, step):
        """Saves checkpoint `step` and returns True if the job should stop now."""
        if self.handler is not None:
            try:
                self.handler.save_checkpoint_if_preempted(checkpoint_number=int(step))
            except _Preempted:
                self.requested = True
                return True
        if self.requested:
            self._save(checkpoint_number=int(step))
            return True
        return False

    def __exit__(self, *exc):
        if self._previous is not None:
            try:
                signal.signal(signal.SIGTERM, self._previous)
            except ValueError:
                pass
        return False
