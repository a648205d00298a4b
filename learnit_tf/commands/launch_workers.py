r"""Starts N local meta-training workers under MultiWorkerMirroredStrategy.

    python scripts/launch_workers.py --num_workers=2 -- \
        --gin_file=gin/image/text_maml_cpu.gin --model_dir=/tmp/learnit/text_2w

Everything after `--` is passed to every worker's `meta_train` (the same flags as
`scripts/meta_train.py`; `--strategy=multi_worker_mirrored` is added unless given).
The launcher picks free local ports, gives worker i the `TF_CONFIG` of a cluster of
N workers on --host with task index i, streams each worker's output prefixed with
`[worker i]`, and exits 0 only if every worker exits 0. Worker 0 is the chief: it
alone keeps checkpoints, logs, TensorBoard events and the exported init in
--model_dir. If a worker fails, the others fail within seconds (see
docs/distributed.md); after --grace_seconds the launcher stops those still running.
SIGTERM or Ctrl-C to the launcher is passed on to every worker as SIGTERM, which
checkpoints at a step boundary and exits 0; re-running the same command resumes.

On real hosts, run `scripts/meta_train.py` with the same flags on each host and a
hand-written TF_CONFIG (`--print_tf_config --hosts=h1:port,h2:port` prints them).

The launcher only starts processes: this module imports neither TensorFlow nor the
learnit_tf package, and `scripts/launch_workers.py` loads it on its own, so the
workers start at once instead of after a TensorFlow import.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags, logging

if "verbose" not in flags.FLAGS:  # Defined by learnit_tf.commands when imported from there.
    flags.DEFINE_bool("verbose", False, "Show INFO logging.")
flags.DEFINE_integer("num_workers", 2, "Number of worker processes (>= 1).")
flags.DEFINE_string("host", "127.0.0.1", "Address the local workers listen on.")
flags.DEFINE_list("hosts", None, "With --print_tf_config: the cluster's host:port list, worker "
                  "0 (the chief) first.")
flags.DEFINE_bool("print_tf_config", False, "Print each worker's TF_CONFIG (for --hosts, or "
                  "local free ports) and exit without starting anything.")
flags.DEFINE_float("grace_seconds", 60.0, "After a worker fails, seconds to let the others "
                   "fail on their own (and report why) before they are killed.")

FLAGS = flags.FLAGS
MULTI_WORKER_FLAG = "--strategy=multi_worker_mirrored"


def free_ports(count, host="127.0.0.1"):
    """`count` distinct TCP ports that were free on `host` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:  # All held open until every port is known, so none is handed out twice.
        for sock in sockets:
            sock.close()


def tf_configs(addresses):
    """The TF_CONFIG (JSON string) of each worker of a cluster, chief (index 0) first."""
    if not addresses:
        raise ValueError("A cluster needs at least one worker address.")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Worker address {address!r} is not of the form host:port.")
    cluster = {"worker": list(addresses)}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(len(addresses))]


def meta_train_command(args):
    """The command line of one worker: meta_train with `args`, multi-worker strategy."""
    strategies = [a for a in args if a.startswith("--strategy")]
    if strategies and strategies != [MULTI_WORKER_FLAG]:
        raise ValueError(f"launch_workers runs --strategy=multi_worker_mirrored; got "
                         f"{strategies}.")
    if not any(a.startswith("--model_dir") for a in args):
        raise ValueError("Pass meta_train's flags after `--`, at least --model_dir "
                         "(and --gin_file).")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(root, "scripts", "meta_train.py")
    if os.path.exists(script):  # A checkout: the script users run by hand.
        program = [script]
    elif importlib.util.find_spec("learnit_tf.commands.meta_train") is not None:  # A wheel.
        program = ["-c", "import sys; from learnit_tf.commands.meta_train import run; "
                         "sys.argv[0] = 'learnit-meta-train'; run()"]
    else:
        raise ValueError("Found neither scripts/meta_train.py nor "
                         "learnit_tf.commands.meta_train to run.")
    return [sys.executable, *program, *args, *([] if strategies else [MULTI_WORKER_FLAG])]


def _stream(prefix, pipe, lock):
    for line in iter(pipe.readline, ""):
        with lock:
            sys.stdout.write(f"{prefix} {line}")
            sys.stdout.flush()
    pipe.close()


def _describe(returncode):
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class WorkerGroup:
    """Local worker processes started with their TF_CONFIG; output streamed with a prefix."""

    def __init__(self, command, configs, env=None):
        self.command = command
        self.configs = configs
        self.env = dict(os.environ if env is None else env)
        self.processes = []
        self.threads = []
        self._lock = threading.Lock()

    def start(self):
        for index, config in enumerate(self.configs):
            env = dict(self.env, TF_CONFIG=config, PYTHONUNBUFFERED="1")
            # A session of its own: a terminal's Ctrl-C reaches the launcher only, which
            # passes on one SIGTERM, so all workers stop at the same step (coordinated
            # by PreemptionCheckpointHandler) instead of each at its own.
            process = subprocess.Popen(self.command, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1,
                                       start_new_session=True)
            self.processes.append(process)
            print(f"[launcher] worker {index}: pid {process.pid}, TF_CONFIG={config}",
                  flush=True)
            thread = threading.Thread(target=_stream, args=(f"[worker {index}]", process.stdout,
                                                            self._lock), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def signal_all(self, signum):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def wait(self, grace_seconds=60.0, poll=0.2):
        """Waits for every worker; returns their exit codes. After the first failure the
        others get `grace_seconds` to end on their own, then are killed."""
        failed_at = None
        while True:
            codes = [p.poll() for p in self.processes]
            if all(c is not None for c in codes):
                break
            if failed_at is None and any(c not in (None, 0) for c in codes):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace_seconds:
                for index, process in enumerate(self.processes):
                    if process.poll() is None:
                        print(f"[launcher] worker {index} still running {grace_seconds:g} s "
                              "after a failure: killing it.", flush=True)
                        process.kill()
            time.sleep(poll)
        for thread in self.threads:
            thread.join(timeout=10)
        return [p.returncode for p in self.processes]


def launch(args, num_workers, host="127.0.0.1", grace_seconds=60.0, env=None):
    """Runs `num_workers` local meta_train workers with `args`; returns 0 if all succeed."""
    if num_workers < 1:
        raise ValueError(f"--num_workers must be >= 1, got {num_workers}.")
    command = meta_train_command(list(args))
    configs = tf_configs([f"{host}:{port}" for port in free_ports(num_workers, host)])
    group = WorkerGroup(command, configs, env)
    previous = {}

    def forward(signum, frame):
        del frame
        print(f"[launcher] {signal.Signals(signum).name}: asking every worker to checkpoint "
              "and stop (SIGTERM).", flush=True)
        group.signal_all(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.signal(signum, forward)
        except ValueError:  # Not the main thread: signals stay with the caller.
            pass
    try:
        group.start()
        codes = group.wait(grace_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for index, code in enumerate(codes):
        print(f"[launcher] worker {index}: {_describe(code)}", flush=True)
    if any(codes):
        print(f"[launcher] error: {sum(1 for c in codes if c)} of {num_workers} workers "
              "failed (see their output above). Re-run the same command to resume from the "
              "chief's last checkpoint.", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv):
    logging.set_verbosity(logging.INFO if FLAGS.verbose else logging.WARNING)
    args = argv[1:]
    if FLAGS.print_tf_config:
        addresses = FLAGS.hosts or [f"{FLAGS.host}:{p}"
                                    for p in free_ports(FLAGS.num_workers, FLAGS.host)]
        try:
            configs = tf_configs(addresses)
        except ValueError as e:
            raise app.UsageError(str(e)) from e
        for index, config in enumerate(configs):
            print(f"# worker {index}{' (chief)' if index == 0 else ''}")
            print(f"export TF_CONFIG='{config}'")
        return 0
    if FLAGS.hosts:
        raise app.UsageError("--hosts is for --print_tf_config; on real hosts start "
                             "scripts/meta_train.py on each host with its TF_CONFIG.")
    try:
        return launch(args, FLAGS.num_workers, FLAGS.host, FLAGS.grace_seconds)
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def run():
    """Console entry point (`learnit-launch-workers`)."""
    app.run(lambda argv: sys.exit(main(argv)))
