"""prepare_procedural_builder: concurrent first use of one dataset in an empty data_dir.

The workers of a multi-worker run start together and each asks for the training
dataset; without the generation lock, each TFDS builder generates into its own
temporary directory and all but the first fail to rename it into place
(`FileExistsError`), and the stdout redirections of two threads tangle (stdout stays
swallowed). Threads start the race here (the lock is a `flock`, which excludes
threads as it does processes).
"""

import threading

from learnit_tf.data.procedural_builders import prepare_procedural_builder
from learnit_tf.kinds.image.text_images import TextImages

SIZES = {"train": 64, "validation": 16, "test": 16}  # The "small" config.


def test_two_concurrent_first_uses_generate_once_and_both_read_it(tmp_path, capsys):
    data_dir = tmp_path / "tfds"
    start = threading.Barrier(2)
    results = [None, None]

    def prepare(index):
        start.wait()  # Both check "not prepared yet" within microseconds of each other.
        try:
            builder = prepare_procedural_builder(TextImages, "small", str(data_dir))
            results[index] = {
                split: sum(1 for _ in builder.as_dataset(split=split)) for split in SIZES}
        except Exception as e:  # pylint: disable=broad-except
            results[index] = e

    threads = [threading.Thread(target=prepare, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results == [SIZES, SIZES], results

    # Generated once, into one complete version directory; no temporary one is left.
    config_dir = data_dir / "text_images" / "small"
    assert sorted(p.name for p in config_dir.iterdir()) == [".1.0.0.lock", "1.0.0"]
    assert sorted(p.name for p in (config_dir / "1.0.0").iterdir()) == [
        "dataset_info.json", "features.json",
        *[f"text_images-{split}.tfrecord-00000-of-00001"
          for split in ("test", "train", "validation")]]
    print("stdout still works")
    out = capsys.readouterr().out
    assert out.count("Generating text_images/small offline into") == 1, out
    assert out.endswith("stdout still works\n"), out

    # A later caller finds it prepared and generates nothing.
    builder = prepare_procedural_builder(TextImages, "small", str(data_dir))
    assert builder.info.splits["train"].num_examples == 64
    assert "Generating" not in capsys.readouterr().out
