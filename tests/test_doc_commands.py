"""Every shell command README.md and docs/**/*.md show is run by a test (doc_commands.py
maps each program and flag to the test that runs it)."""
import ast
import os
import re
import subprocess
import sys

import doc_commands
from doc_commands import COVERAGE, REPO


def test_every_documented_command_and_flag_has_a_test():
    commands = doc_commands.documented_commands()
    assert len(commands) > 40, "the docs' sh blocks were not found"
    missing = doc_commands.uncovered(commands)
    assert not missing, "documented commands no test runs (add the test and its entry in " \
        "tests/doc_commands.py COVERAGE):\n" + "\n".join(
            f"  {doc}: {command}  -- missing {what}" for doc, command, what in missing)


def test_a_new_readme_command_without_a_test_is_reported(tmp_path):
    """What the check above does when a command (or a flag) is added to a doc."""
    readme = tmp_path / "README.md"
    readme.write_text("Intro.\n\n```sh\npython scripts/fit.py --init=text_siren "
                      "--input=a.png --steps=2 --output_dir=out\n"
                      "python scripts/fit.py --init=text_siren --input=a.png --new_flag=1\n"
                      "python scripts/new_tool.py --x=1 \\\n    --y=2\n```\n")
    commands = doc_commands.documented_commands([str(readme)])
    assert len(commands) == 3
    missing = doc_commands.uncovered(commands)
    assert [what for _, _, what in missing] == ["scripts/fit.py --new_flag",
                                                "program 'scripts/new_tool.py'"]


def _test_names(path):
    """{"Class::test", "test"} defined in a test file."""
    tree = ast.parse(open(path).read())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{f.name}" for f in node.body
                      if isinstance(f, ast.FunctionDef)}
    return names


def test_every_coverage_entry_names_a_test_that_uses_the_flag():
    """Each entry is an existing test, in a file that names the program (its script,
    console command or module) and passes the flag."""
    for program, flags in COVERAGE.items():
        stem = program.split(" ")[-1 if program.startswith("scripts/zoo.py") else 0]
        stem = os.path.basename(stem).replace(".py", "")
        for flag, node in flags.items():
            path, name = node.split("::", 1)
            assert os.path.isfile(os.path.join(REPO, path)), node
            assert name in _test_names(os.path.join(REPO, path)), f"no test {node}"
            text = open(os.path.join(REPO, path)).read()
            if program.startswith("scripts/") and program != "scripts/meta_train.py" or \
                    flag == "":
                assert stem in text or program in text, (program, node)
            if flag and program.startswith("scripts/"):
                assert re.search(rf"--{flag}\b|\b{flag}=|\"{flag}\"", text), (program, flag, node)


def test_ci_runs_the_readme_commands():
    """.ci/run installs README's Debian packages and its development install, and runs
    README's test command, exactly."""
    readme = open(os.path.join(REPO, "README.md")).read()
    ci = open(os.path.join(REPO, ".ci", "run")).read()
    assert "pip install -e '.[test]' && python -m pytest -n 2 tests" in readme
    assert "python -m pip install -q -e '.[test]'" in ci
    assert re.search(r"^python -m pytest -n 2 tests$", ci, re.M)
    readme_packages = re.search(r"apt-get install -y ([\w .-]+?) && pip", readme).group(1)
    ci_packages = re.search(r'^PACKAGES="([^"]*)"', ci, re.M).group(1)
    assert readme_packages.split() == ci_packages.split() == ["libjs-emojify", "chromium"]


def test_readme_is_short_and_starts_with_the_two_commands():
    """README: under ~10 KB; its first block is the install-and-run command and the
    test command, in that order."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert len(readme.encode()) <= 10 * 1024, len(readme.encode())
    first = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert readme[:first.start()].strip() == "# learnit_tf"
    commands = [l for l in first.group(1).splitlines() if not l.startswith("#")]
    assert commands[0].startswith("pip install . && (cd /tmp && learnit-evaluate --init=")
    assert commands[1].endswith("python -m pytest -n 2 tests") and len(commands) == 2


def test_readme_zoo_table_is_the_generated_one():
    """README's zoo table is exactly `learnit-zoo list --format=markdown` of zoo/index.json
    (regenerate it after publishing)."""
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = readme.split("## The model zoo\n", 1)[1]
    first_table = []
    for line in section.strip().splitlines():
        if not line.startswith("|"):
            break
        first_table.append(line)
    the_zoo = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
    assert "\n".join(first_table) == zoo.format_table(the_zoo.list(), markdown=True)


def _markdown_links(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_and_docs_links_resolve():
    """Every relative link and picture of README.md and docs/**/*.md names an existing
    file or folder (the pages moved out of README link each other)."""
    broken = []
    for path in doc_commands._doc_paths():  # pylint: disable=protected-access
        text = open(path, encoding="utf-8").read()
        for target in _markdown_links(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = os.path.normpath(os.path.join(os.path.dirname(path),
                                                     target.split("#")[0]))
            if not os.path.exists(resolved):
                broken.append((os.path.relpath(path, REPO), target))
    assert not broken, broken


def test_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) ![no](missing.png) `[x](code.md)`\n```\n[y](z.md)\n```\n")
    assert _markdown_links(page.read_text()) == ["page.md", "missing.png", "code.md"]


def test_python_snippet_of_distributed_md_runs(tmp_path):
    """docs/distributed.md's data-preparation one-liner, with a local directory for the
    bucket and the `small` config instead of `paper` (the same builder call)."""
    (command,) = [c for d, c in doc_commands.documented_commands()
                  if c.startswith("python -c ")]
    code = re.search(r'python -c "(.*)"', command).group(1)
    code = code.replace("$BUCKET", str(tmp_path)).replace("'paper'", "'small'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    built = os.path.join(str(tmp_path), "tensorflow_datasets", "text_images", "small")
    assert os.path.isdir(built), os.listdir(tmp_path)


def _tables(text):
    """[(header cells, [row cells])] of the Markdown tables of a page."""
    tables, current = [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = (cells, [])
            elif not set("".join(cells)) <= set("-: "):
                current[1].append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    return tables


def _number(cell):
    return float(re.search(r"-?\d+(?:\.\d+)?", cell.replace("**", "")).group(0))


def test_docs_version_numbers_equal_the_metadata():
    """The per-version numbers moved from README to the kind pages are the zoo's: the
    image headline table (meta and standard PSNR at 2 steps, steps to match) equals each
    version's index headline, and the CT views / NeRF steps rows of a version's recipe
    equal the means its metadata.json records."""
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    the_zoo = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
    checked = 0
    for page in ("docs/image/README.md", "docs/ct/README.md", "docs/nerf/README.md"):
        for header, rows in _tables(open(os.path.join(REPO, page), encoding="utf-8").read()):
            for row in rows:
                labels = re.findall(r"`([a-z_]+)@(\d+)`", row[0])
                if len(labels) != 1:
                    continue
                name, version = labels[0]
                if header[1] == "meta init, 2 steps":
                    headline = the_zoo.info(name, version)["headline"]
                    assert _number(row[1]) == round(headline["meta_psnr_at_2"], 2), row
                    assert _number(row[2]) == round(headline["standard_psnr_at_2"], 2), row
                    assert _number(row[3]) == headline["steps_to_match"], row
                    checked += 1
                elif header[0] in ("views", "test-time steps") and "its recipe" in row[0]:
                    rows_recorded = the_zoo.describe(name, version)["evaluation"]["rows"]
                    by_views = header[0] == "views"
                    for point, cell in zip(header[1:], row[1:]):
                        (mean,) = [r["psnr_mean"] for r in rows_recorded if r["init"] == "meta"
                                   and r["observations" if by_views else "steps"] == int(point)]
                        assert _number(cell) == round(mean, 2), (page, row, point)
                    checked += 1
    assert checked >= 12, checked  # 10 image versions, the CT and the NeRF recipe rows
