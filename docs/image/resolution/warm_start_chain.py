"""Records an exported init's whole warm-start chain in its metadata.json (before publishing).

    python docs/image/resolution/warm_start_chain.py --init=/work/runs/emoji_mr/g/init \
        --parent=emoji_siren@5

meta_train records one level of a warm start (`hyperparameters.warm_start`: the parent's
path, weights digest, steps, wall time and command). The rest of the chain is in the
parents' own metadata: this script follows it (a parent's folder while it exists here,
the zoo version `--parent` where a recorded digest is that version's weights and learned
rates, which it must be somewhere on the chain, or the scaled copy of `--parent` that
`--scale_command` wrote), then writes the top-level
`warm_start_chain` (newest ancestor first: each ancestor's one-level record, its zoo
version where it is one, and the command of docs/image/resolution/scale_first_layer.py
where the chain passes through its output; past a `--parent` that records its own
`warm_start_chain`, that chain) and `total_steps` / `total_wall_time_seconds`
(this run plus every ancestor's training). metadata.json is replaced atomically; nothing
else changes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("init", None, "Exported init directory (its metadata.json is updated).")
flags.DEFINE_string("parent", None, "The zoo version the run was warm-started from.")
flags.DEFINE_string("scale_command", "python docs/image/resolution/scale_first_layer.py "
                    "--init=emoji_siren@1 --scale=0.7 --output_dir=/work/runs/emoji_mr/scaled/s0.7",
                    "The command that made the scaled warm start the parent's own parent is.")
flags.mark_flags_as_required(["init", "parent"])


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel
    import json
    from learnit_tf.commands import init_args
    from learnit_tf.meta import init_io
    from learnit_tf.training.warm_start import warm_start_record
    path = os.path.join(FLAGS.init, init_io.METADATA_FILE)
    with open(path) as f:
        metadata = json.load(f)
    parent_model, parent_metadata, _ = init_args.resolve_init(FLAGS.parent)
    parent = warm_start_record(FLAGS.parent, parent_model, init_io.read_init_metadata(
        init_args.resolve_init_directory(FLAGS.parent)[0]))
    scale_output = FLAGS.scale_command.split("--output_dir=")[-1].split()[0]
    chain, record, found = [], metadata["hyperparameters"].get("warm_start"), False
    while record:
        entry = dict(record)
        if record["weights_sha256"] == parent["weights_sha256"]:
            entry["version"], found = FLAGS.parent, True
            following = parent_metadata
        elif os.path.isfile(os.path.join(record["init"], init_io.METADATA_FILE)):
            following = init_io.read_metadata(record["init"])
        else:
            following = {}
        if record["init"].rstrip("/") == scale_output.rstrip("/"):
            entry["made_by"] = FLAGS.scale_command
            entry["note"] = (f"the init its command trained ({record['steps']} steps), then "
                             "made_by (the first-layer kernel scaled)")
            if (following.get("first_layer_scale") or {}).get("parent") == FLAGS.parent:
                # The scaled copy of the zoo version itself (the SDF run's warm start,
                # docs/image/resolution_sdf.md): its record (steps, command) is the version's,
                # its weights are not.
                entry["scaled_from"], found = FLAGS.parent, True
        chain.append(entry)
        if entry.get("version") == FLAGS.parent and following.get("warm_start_chain"):
            # A published parent carries its own resolved chain (its ancestors' folders
            # may be long gone): the rest of this chain is that one.
            chain.extend(following["warm_start_chain"])
            break
        record = (following.get("hyperparameters") or {}).get("warm_start")
    if not found:
        raise app.UsageError(f"{FLAGS.init}'s warm starts do not pass through {FLAGS.parent} "
                             f"(weights {parent['weights_sha256']}).")
    metadata["warm_start_chain"] = chain
    metadata["total_steps"] = metadata["steps"] + sum(a["steps"] for a in chain)
    metadata["total_wall_time_seconds"] = round(
        metadata["wall_time_seconds"] + sum(a["wall_time_seconds"] for a in chain), 1)
    init_io.write_json_atomic(path, metadata)
    print(json.dumps({k: metadata[k] for k in ("warm_start_chain", "total_steps",
                                               "total_wall_time_seconds")}, indent=1))


if __name__ == "__main__":
    app.run(main)
