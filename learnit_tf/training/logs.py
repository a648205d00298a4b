"""What a meta-training run writes beside its checkpoints: `train_log.csv`, TensorBoard
events and `config.gin`, each cut back to the restored step when a run resumes.

A resumed run drops the rows of `train_log.csv` and the TensorBoard events the previous
run wrote after its last checkpoint (rewriting the event files), so its curves continue
without overlap. Text files are replaced atomically (`learnit_tf.atomic` locally; a
temporary and a rename on gs://).
"""

import csv
import io
import os

import gin
import tensorflow as tf

from learnit_tf.core import atomic
from learnit_tf.training.distribute import is_remote_path

LOG_FILE = "train_log.csv"
LOG_COLUMNS = ("step", "loss", "inner_loss_first", "seconds")
TENSORBOARD_DIR = "tensorboard"
GIN_CONFIG_FILE = "config.gin"


def write_text_atomic(path, text):
    """Writes a local or remote (gs://) text file through a temporary and a rename."""
    if not is_remote_path(path):
        def save(tmp):
            with open(tmp, "w") as f:
                f.write(text)
        atomic.atomic_save(path, save)
        return
    # Object stores: tf.io.gfile, which atomic.py (local files) does not use.
    tmp = path + ".tmp"
    try:
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:  # E.g. a full disk: leave no temporary behind.
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise


def read_log(path, max_step):
    """Rows of a previous run's log up to `max_step` (a resumed run rewrites the rest)."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= max_step]


def rewrite_log(path, rows):
    """Replaces the CSV log with its header and `rows`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


class StepLog:
    """Appends per-step rows to the CSV log.

    Local logs are flushed every step (watchable while training). On remote file
    systems (gs://), where an append re-uploads the whole object, rows are flushed
    only before each checkpoint, which is all a resumed run keeps anyway.
    """

    def __init__(self, path):
        self._file = tf.io.gfile.GFile(path, "a")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_COLUMNS, lineterminator="\n")
        self._every_row = not is_remote_path(path)

    def write(self, row):
        self._writer.writerow(row)
        if self._every_row:
            self._file.flush()

    def flush(self):
        self._file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()
        return False


def purge_events_after(directory, step):
    """Drops TensorBoard events with a step > `step` from the event files in `directory`.

    A resumed run calls this with its restored step, so the events an interrupted run
    wrote after its last checkpoint do not overlap the resumed curves. Each file is
    rewritten through a temporary and a rename; a record truncated by a kill ends the
    file. Returns the number of events dropped.
    """
    if not tf.io.gfile.isdir(directory):
        return 0
    dropped = 0
    for name in sorted(tf.io.gfile.listdir(directory)):
        path = os.path.join(directory, name)
        if "tfevents" not in name or name.endswith(".tmp") or tf.io.gfile.isdir(path):
            continue
        kept, changed = [], False
        try:
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                if tf.compat.v1.Event.FromString(record).step > step:
                    dropped += 1
                    changed = True
                else:
                    kept.append(record)
        except tf.errors.DataLossError:
            changed = True  # A truncated last record (the writer was killed).
        if changed:
            with tf.io.TFRecordWriter(path + ".tmp") as writer:
                for record in kept:
                    writer.write(record)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return dropped


def write_gin_config(model_dir):
    """Saves the gin config this run was started with (Model Garden style)."""
    config = gin.config_str()
    if config.strip():
        write_text_atomic(os.path.join(model_dir, GIN_CONFIG_FILE), config)


def open_run_logs(model_dir, start_step):
    """config.gin, the CSV log and TensorBoard of a run starting at `start_step`, cut back
    to it; returns (CSV log path, TensorBoard summary writer)."""
    write_gin_config(model_dir)
    log_path = os.path.join(model_dir, LOG_FILE)
    rewrite_log(log_path, read_log(log_path, start_step))
    tensorboard = os.path.join(model_dir, TENSORBOARD_DIR)
    if purge_events_after(tensorboard, start_step):
        print(f"Dropped the TensorBoard events past step {start_step} of the interrupted run.")
    return log_path, tf.summary.create_file_writer(tensorboard)
