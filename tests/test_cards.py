"""Model cards (learnit_tf/zoo/card.py): every zoo version has one, generated from its
metadata and index record, with numbers equal to the metadata's; publishing writes one."""
import copy
import dataclasses
import hashlib
import json
import os
import re

import numpy as np
import pytest
from absl import flags
from PIL import Image

from learnit_tf import zoo
from learnit_tf.zoo import card
from learnit_tf.meta import FitPhase, FitRecipe, InnerOptimizer, init_io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
LABELS = [f"{row['name']}@{row['version']}" for row in SHIPPED.list()]


def _record(label):
    name, version = label.split("@")
    return card.read_version(SHIPPED, name, version)


def _card_text(record):
    with open(os.path.join(record.directory, card.CARD_FILE), encoding="utf-8") as f:
        return f.read()


def _table_row(text, first_cells):
    """The cells of the Markdown table row starting with `first_cells`."""
    prefix = "| " + " | ".join(first_cells) + " |"
    rows = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, (prefix, rows)
    return [c.strip() for c in rows[0].strip("|").split("|")][len(first_cells):]


@pytest.mark.parametrize("label", LABELS)
def test_checked_in_card_is_what_the_generator_makes(label):
    """The card next to each shipped init is byte for byte `card_markdown` of its
    metadata and index record (so nobody edited it by hand, and it is up to date)."""
    record = _record(label)
    expected = card.card_markdown(record, card.card_images(record.directory))
    assert _card_text(record) == expected, (
        f"zoo/{record.info['path']}README.md is stale; regenerate it with "
        "`learnit-zoo cards`")


@pytest.mark.parametrize("label", LABELS)
def test_card_numbers_equal_the_metadata(label):
    """Read back from the card text, independently of the generator: the headline
    values and match of the index record, every recorded evaluation mean, the steps to
    each level, the training steps and wall time, and each file's size and sha256."""
    record = _record(label)
    text = _card_text(record)
    metadata = json.load(open(os.path.join(record.directory, "metadata.json")))
    headline = record.info["headline"]
    from learnit_tf.core import registry  # pylint: disable=import-outside-toplevel
    kind = (registry.get_kind(metadata["kind"]) if "kind" in metadata  # Schema 1: no kind.
            else registry.kind_of_task(metadata["task"]["class_name"]))
    metric = kind.metric  # The kind's own metric (PSNR, IoU).
    key, tolerance = metric.key, 0.6 * 10 ** -metric.digits
    meta_key = next(k for k in headline if k.startswith(f"meta_{key}_at_"))
    point = meta_key[len(f"meta_{key}_at_"):]
    label = f"{metric.label} ({metric.unit})" if metric.unit else metric.label
    bold = re.search(rf"\*\*{re.escape(label)} at (.*?): ([\d.]+) \(this init\) vs ([\d.]+) "
                     r"\(standard init\)\*\*", text)
    assert bold, text[:2000]
    assert float(bold.group(2)) == pytest.approx(headline[meta_key], abs=tolerance)
    assert float(bold.group(3)) == pytest.approx(headline[f"standard_{key}_at_{point}"],
                                                 abs=tolerance)
    match = headline.get("steps_to_match", headline.get("views_to_match"))
    assert re.search(rf"needs >? ?{re.escape(str(match).lstrip('> '))} (steps|views) to match",
                     text), match

    evaluation = metadata["evaluation"]
    if "rows" in evaluation:
        for row in evaluation["rows"]:
            if row["init"] not in ("meta", "standard"):
                continue
            optimizer = row["optimizer"] if "(" in row["optimizer"] else \
                f"{row['optimizer']} {row['learning_rate']:g}"
            points = re.search(r"\n\| init \| optimizer \| (.*) \|\n", text).group(1).split(" | ")
            cells = _table_row(text, [row["init"], optimizer])
            by_views = "observations (at" in text
            column = points.index(str(row["observations"] if by_views else row["steps"]))
            assert float(cells[column]) == pytest.approx(row[f"{key}_mean"], abs=tolerance), row
    else:
        curve = evaluation["psnr_curve"]["meta"]
        points = re.search(r"\n\| init \| optimizer \| (.*) \|\n", text).group(1).split(" | ")
        cells = next(c for line in text.splitlines() if line.startswith("| meta |")
                     for c in [[x.strip() for x in line.strip("|").split("|")][2:]])
        for step, value in curve.items():
            assert float(cells[points.index(str(step))]) == pytest.approx(value, abs=tolerance)

    reach = (evaluation.get("summary") or {}).get("steps_to_psnr")
    if reach:
        for level, steps in reach["meta"]["steps"].items():
            cells = _table_row(text, [f"{float(level):.2f} dB"])
            # A level not reached within the evaluated steps (None) reads "not reached".
            shown = [("not reached" if value is None else f"{value:g}")
                     for value in (steps, reach["standard"]["steps"][level])]
            assert cells[:2] == shown
    assert f"{metadata['steps']} outer steps" in text
    wall = metadata["wall_time_seconds"]  # Seconds below 2 min, minutes below 2 h, else hours.
    shown = (f"{wall:.0f} s" if wall < 120 else f"{wall / 60:.1f} min" if wall < 7200
             else f"{wall / 3600:.1f} h")
    assert f"{metadata['steps']} outer steps, {shown} wall time" in text
    assert f"{headline['parameters']:,} parameters" in text
    for filename, info in record.info["files"].items():
        assert _table_row(text, [f"`{filename}`"]) == [f"{info['size']:,} B",
                                                      f"`{info['sha256']}`"]
        with open(os.path.join(record.directory, filename), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == info["sha256"]


@pytest.mark.parametrize("label", LABELS)
def test_card_pictures_exist_decode_and_are_not_blank(label):
    record = _record(label)
    text = _card_text(record)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert card.CURVE_FILE in images
    for name in images:
        with Image.open(os.path.join(record.directory, name)) as image:
            pixels = np.asarray(image.convert("L"), np.float32)
        assert pixels.shape[0] >= 100 and pixels.shape[1] >= 100, pixels.shape
        assert pixels.std() > 10, (name, pixels.std())  # drawn, not a blank canvas


def test_a_changed_number_changes_the_card():
    """The card reads the metadata: moving one recorded mean moves the card."""
    record = _record("text_siren@4")
    changed = copy.deepcopy(record)
    row = next(r for r in changed.metadata["evaluation"]["rows"]
               if r["init"] == "standard" and r["steps"] == 100)
    before = f"{row['psnr_mean']:.2f}"
    row["psnr_mean"] += 1.0
    text = card.card_markdown(changed, ["curve.png"])
    cells = _table_row(text, ["standard", "adam 0.0001"])
    assert before not in cells and f"{row['psnr_mean']:.2f}" in cells
    assert text != card.card_markdown(record, ["curve.png"])


def test_the_fit_recipe_line_names_every_phase_setting():
    """A card's fit recipe says what the recipe does: learned rates, their scale, momentum
    (and its restart) and warm-up, read back from the recorded recipe (sdf_siren@4's)."""
    recipe = _record("sdf_siren@4").metadata["fit_recipe"]
    assert card.format_recipe(recipe) == (
        "SGD 0.01 with the learned per-parameter rates for 20 steps, then SGD 0.01 with the "
        "learned per-parameter rates x 2, heavy-ball momentum 0.97, linear warm-up over 20 "
        "steps for the remaining steps")
    restarted = copy.deepcopy(recipe)
    restarted["phases"][1].update(momentum_restart=True, rate_scale=1.0)
    assert card.format_recipe(restarted).endswith(
        "rates, heavy-ball momentum 0.97 (restarted when the gradient opposes it), linear "
        "warm-up over 20 steps for the remaining steps")

def test_every_fit_phase_field_shows_in_the_card_and_in_the_recipe_name():
    """card.format_recipe (prose) and FitPhase.describe (the recorded name) describe the
    same fields: changing any one FitPhase field from its default changes both texts, and
    a record FitRecipe.from_dict refuses is refused by the card too."""
    sgd = InnerOptimizer("sgd", 0.01)
    base = FitPhase(sgd, learned_rates=False)
    changed = {"optimizer": InnerOptimizer("adam", 0.01), "steps": 20,
               "learned_rates": True, "momentum": 0.9, "warmup_steps": 5,
               "rate_scale": 2.0}
    assert set(changed) | {"momentum_restart"} == {f.name for f in dataclasses.fields(FitPhase)}
    cases = [dataclasses.replace(base, **{name: value}) for name, value in changed.items()]
    momentum = dataclasses.replace(base, momentum=0.9)
    cases.append(dataclasses.replace(momentum, momentum_restart=True))
    bases = [base] * len(changed) + [momentum]
    for before, after in zip(bases, cases):
        # A later phase, so that steps=None ("the remaining steps") is described too.
        recipes = [FitRecipe((FitPhase(sgd, steps=2), p)) for p in (before, after)]
        assert recipes[0].name != recipes[1].name, after
        assert (card.format_recipe(recipes[0].to_dict())
                != card.format_recipe(recipes[1].to_dict())), after
    with pytest.raises(ValueError, match="fit_recipe: not a fit recipe"):
        card.format_recipe({"phases": [{"optimizer": {"name": "sgd", "learning_rate": 0.01},
                                        "rate_scale": -1}]})
    assert card.format_recipe(None) == ""


def test_cards_are_not_in_the_index():
    """What a pinned version verifies is unchanged: only the init files are listed."""
    for row in SHIPPED.list():
        files = SHIPPED.info(row["name"], row["version"])["files"]
        assert sorted(files) == sorted(init_io.INIT_FILES)


def test_publish_command_writes_the_card(tmp_path):
    """`learnit-publish` into a local zoo writes README.md and curve.png next to the
    published files (from text_siren@1's recorded evaluation), the index still lists
    only the init files, and the version loads verified."""
    from learnit_tf.commands import publish  # pylint: disable=import-outside-toplevel
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    metadata = json.load(open(os.path.join(REPO, "zoo", "text_siren", "1", "metadata.json")))
    init = init_io.save_init(Siren(width=8, depth=2, seed=0), str(tmp_path / "init"),
                             metadata)
    destination = tmp_path / "zoo"
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["publish.py", f"--init={init}", "--name=tiny", "--version=1",
                 f"--destination={destination}", f"--evaluation_dir={REPO}/docs/image/text"])
    try:
        publish.main(["publish.py"])
    finally:
        flags.FLAGS.unparse_flags()
    version_dir = destination / "tiny" / "1"
    assert sorted(os.listdir(version_dir)) == sorted(
        list(init_io.INIT_FILES) + [card.CARD_FILE, card.CURVE_FILE, card.RECONSTRUCTIONS_FILE])
    the_zoo = zoo.Zoo(str(destination / "index.json"), progress=False)
    assert sorted(the_zoo.info("tiny", "1")["files"]) == sorted(init_io.INIT_FILES)
    record = card.read_version(the_zoo, "tiny", "1")
    text = (version_dir / card.CARD_FILE).read_text()
    assert text == card.card_markdown(record, card.card_images(str(version_dir)))
    assert "**PSNR (dB) at 2 steps: 20.03 (this init) vs 12.87 (standard init)**" in text
    assert "`Siren` (width=8, depth=2" in text
    zoo.load("tiny", index=str(destination / "index.json"))
    # Publishing the next version leaves this card as it is, and still true.
    flags.FLAGS(["publish.py", f"--init={init}", "--name=tiny", "--version=2",
                 f"--destination={destination}"])
    try:
        publish.main(["publish.py"])
    finally:
        flags.FLAGS.unparse_flags()
    the_zoo = zoo.Zoo(str(destination / "index.json"), progress=False)
    assert (version_dir / card.CARD_FILE).read_text() == text == card.card_markdown(
        card.read_version(the_zoo, "tiny", "1"), card.card_images(str(version_dir)))
    assert (destination / "tiny" / "2" / card.CARD_FILE).is_file()


def test_zoo_cards_command_rewrites_the_cards(tmp_path):
    """`scripts/zoo.py cards --index=ZOO` writes the card of every version of a local zoo:
    a copy of one shipped version with its card removed gets the checked-in card back."""
    import shutil  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    index = json.load(open(os.path.join(REPO, "zoo", "index.json")))
    entry = index["entries"]["shepp_logan_ct"]
    index["entries"] = {"shepp_logan_ct": dict(entry, versions={"2": entry["versions"]["2"]},
                                               latest="2")}
    zoo_dir = tmp_path / "zoo"
    shutil.copytree(os.path.join(REPO, "zoo", "shepp_logan_ct", "2"),
                    zoo_dir / "shepp_logan_ct" / "2")
    (zoo_dir / "index.json").write_text(json.dumps(index))
    shipped_card = (zoo_dir / "shepp_logan_ct" / "2" / card.CARD_FILE).read_text()
    os.remove(zoo_dir / "shepp_logan_ct" / "2" / card.CARD_FILE)
    os.remove(zoo_dir / "shepp_logan_ct" / "2" / card.CURVE_FILE)
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "zoo.py"), "cards",
                             f"--index={zoo_dir / 'index.json'}"], capture_output=True,
                            text=True, timeout=300, check=False, cwd=str(tmp_path),
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shepp_logan_ct@2: README.md, curve.png" in result.stdout
    # Same card (its reconstructions.png was kept: the evaluation folder is not in cwd).
    assert (zoo_dir / "shepp_logan_ct" / "2" / card.CARD_FILE).read_text() == shipped_card
    assert (zoo_dir / "shepp_logan_ct" / "2" / card.CURVE_FILE).stat().st_size > 5000
