"""Tests of the shared evaluation layer: the report and its writer, protocol options and
headlines, the PSNR-vs-steps protocol, zoo headlines from the kinds' protocols, and the
import graph of learnit_tf (no cycles through the kinds or the evaluation layer)."""

import ast
import csv
import json
import os
import tempfile

import numpy as np

from learnit_tf import evaluation, testing, zoo
from learnit_tf import headline as zoo_headline
from learnit_tf.kinds.image import ImageTask
from learnit_tf.meta import InnerOptimizer
from learnit_tf.models import Siren

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _report(figures=None, tables=None):
    sgd, adam = InnerOptimizer("sgd", 1e-2), InnerOptimizer("adam", 1e-4)
    rows = [evaluation.report_row("meta", sgd, 2, [20.0, 22.0]),
            evaluation.report_row("standard", adam, 2, [12.0, 13.0], observations="")]
    return evaluation.Report("psnr_vs_steps", "tiny", rows, summary={"x": 1},
                             settings={"meta_steps": 2}, figures=figures or {},
                             tables=tables or {})


def _png(path):
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")


class ReportTest(testing.TestCase):

    def test_row_statistics(self):
        row = evaluation.report_row("meta", InnerOptimizer("sgd", 0.5), 10, [10.0, 14.0], 1)
        self.assertEqual(row, {"init": "meta", "optimizer": "sgd", "learning_rate": 0.5,
                               "steps": 10, "observations": 1, "psnr_mean": 12.0,
                               "psnr_std": 2.0, "count": 2})
        with self.assertRaisesRegex(ValueError, "at least one PSNR"):
            evaluation.report_row("meta", InnerOptimizer("sgd", 0.5), 1, [])

    def test_rows_must_have_every_column(self):
        with self.assertRaisesRegex(ValueError, r"row 0 .* lacks columns \['count'\]"):
            evaluation.Report("p", "i", [{c: 0 for c in evaluation.REPORT_COLUMNS[:-1]}])

    def test_write_files_columns_and_json(self):
        out = os.path.join(self.get_temp_dir(), "new", "out")
        report = _report(figures={"curve.png": _png},
                         tables={"per_example.csv": (("init", "psnr"), [{"init": "meta",
                                                                         "psnr": 20.0}])})
        paths = report.write(out)
        self.assertEqual([os.path.basename(p) for p in paths],
                         ["report.csv", "report.json", "per_example.csv", "curve.png"])
        self.assertEqual(sorted(os.listdir(out)), sorted(os.path.basename(p) for p in paths))
        with open(os.path.join(out, "report.csv")) as f:
            reader = csv.DictReader(f)
            self.assertEqual(tuple(reader.fieldnames), evaluation.REPORT_COLUMNS)
            rows = list(reader)
        self.assertEqual([(r["init"], r["optimizer"], r["steps"], r["observations"], r["count"])
                          for r in rows], [("meta", "sgd", "2", "", "2"),
                                           ("standard", "adam", "2", "", "2")])
        self.assertAlmostEqual(float(rows[0]["psnr_mean"]), 21.0)
        self.assertAlmostEqual(float(rows[1]["psnr_std"]), 0.5)
        with open(os.path.join(out, "report.json")) as f:
            data = json.load(f)
        self.assertEqual(data["protocol"], "psnr_vs_steps")
        self.assertEqual(data["columns"], list(evaluation.REPORT_COLUMNS))
        self.assertEqual(data["settings"], {"meta_steps": 2})
        back = evaluation.Report.from_json(data)
        self.assertEqual(back.rows, report.rows)
        self.assertEqual(back.row("standard", steps=2)["psnr_mean"], 12.5)
        self.assertIsNone(back.row("standard", steps=3))

    def test_failing_figure_writes_nothing(self):
        root = self.get_temp_dir()
        existing = os.path.join(root, "existing")
        os.makedirs(existing)
        _png(os.path.join(existing, "curve.png"))

        def broken(path):
            with open(path, "w") as f:
                f.write("half")
            raise RuntimeError("figure failed")

        for out in (existing, os.path.join(root, "fresh")):
            with self.assertRaisesRegex(RuntimeError, "figure failed"):
                _report(figures={"a.png": _png, "curve.png": broken}).write(out)
        # The old file is untouched, no report file and no staging directory remain, and
        # the directory the writer created is gone again.
        self.assertEqual(os.listdir(existing), ["curve.png"])
        with open(os.path.join(existing, "curve.png"), "rb") as f:
            self.assertEqual(f.read(), b"\x89PNG\r\n\x1a\n")
        self.assertFalse(os.path.exists(os.path.join(root, "fresh")))

    def test_writer_that_writes_nothing_and_bad_names_refused(self):
        out = os.path.join(self.get_temp_dir(), "out")
        with self.assertRaisesRegex(RuntimeError, "'lazy.png' wrote no file"):
            _report(figures={"lazy.png": lambda path: None}).write(out)
        for name in ("../x.png", ".hidden.png", "a/b.png"):
            with self.assertRaisesRegex(ValueError, "plain file names"):
                _report(figures={name: _png}).write(out)
        self.assertFalse(os.path.exists(out))


class ProtocolOptionsTest(testing.TestCase):

    def test_flag_strings_are_converted_to_field_types(self):
        protocol = evaluation.StepsProtocol(meta_steps="3", standard_steps=["7"],
                                            meta_learning_rate="1e-2", progress="false",
                                            standard_learning_rate=5e-4, directory="/x")
        o = protocol.options
        self.assertEqual((o.meta_steps, o.standard_steps, o.meta_learning_rate, o.progress,
                          o.standard_learning_rate, o.directory),
                         (3, 7, 0.01, False, 5e-4, "/x"))
        self.assertEqual(o.num_examples, 8)  # unset: the default
        # Options given as an object, then overridden.
        again = evaluation.StepsProtocol(o, num_examples="2").options
        self.assertEqual((again.num_examples, again.meta_steps), (2, 3))

    def test_bad_options_name_the_option(self):
        with self.assertRaisesRegex(ValueError, r"no options \['views'\]"):
            evaluation.StepsProtocol(views="1,2")
        with self.assertRaisesRegex(ValueError, "'meta_steps' expects int, got '2.5'"):
            evaluation.StepsProtocol(meta_steps="2.5")
        with self.assertRaisesRegex(ValueError, "'progress' expects bool"):
            evaluation.StepsProtocol(progress="maybe")
        with self.assertRaisesRegex(ValueError, "'meta_steps' takes one value"):
            evaluation.StepsProtocol(meta_steps=["1", "2"])
        with self.assertRaisesRegex(TypeError, "expects StepsOptions"):
            evaluation.StepsProtocol(options={"meta_steps": 2})

    def test_protocol_of_each_shipped_kind(self):
        for name, cls_name in (("text_siren", "ImageProtocol"), ("shepp_logan_ct", "CtProtocol"),
                               ("procedural_chairs_nerf", "NerfProtocol")):
            protocol = evaluation.protocol_for(zoo.describe(name), num_examples=2)
            self.assertEqual(type(protocol).__name__, cls_name)
            self.assertEqual(protocol.options.num_examples, 2)
        with self.assertRaisesRegex(ValueError, "records no known task"):
            evaluation.protocol_for({"task": {"class_name": "NoSuchTask"}})


class StepsProtocolTest(testing.TestCase):
    """The PSNR-vs-steps protocol on tiny images (examples given, no dataset)."""

    def test_rows_summary_and_headline(self):
        task = ImageTask(8)
        images = [np.random.default_rng(i).random((8, 8, 3)).astype(np.float32)
                  for i in range(2)]
        examples = [{"image": image} for image in images]
        metadata = {"signal_class": "tiny", "task": {"class_name": "ImageTask",
                                                     "config": task.get_config()},
                    "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}}
        model = Siren(out_features=3, width=16, depth=2, seed=0)
        protocol = evaluation.StepsProtocol(meta_steps=3, standard_steps=4, progress=False)
        report = protocol.evaluate(model, metadata, "tiny", examples=examples)
        self.assertEqual(report.protocol, "psnr_vs_steps")
        self.assertEqual([(r["init"], r["steps"]) for r in report.rows],
                         [("meta", s) for s in range(4)] + [("standard", s) for s in range(5)])
        for row in report.rows:
            self.assertEqual(row["count"], 2)
            self.assertEqual(row["observations"], "")
            self.assertTrue(np.isfinite(row["psnr_mean"]))
        self.assertEqual({(r["optimizer"], r["learning_rate"]) for r in report.rows},
                         {("sgd", 1e-2), ("adam", 1e-4)})
        # Step 0 of the meta init is the PSNR of the untouched init on these images.
        prediction = task.render(*_functional(model)).numpy()
        psnr0 = [-10 * np.log10(np.mean((prediction - im) ** 2)) for im in images]
        self.assertAllClose(report.row("meta", steps=0)["psnr_mean"], np.mean(psnr0),
                            atol=1e-4)
        headline = evaluation.StepsProtocol.headline(report)
        self.assertEqual(headline["psnr_at"], "2 steps")
        self.assertAlmostEqual(headline["meta_psnr_at_2"],
                               report.row("meta", steps=2)["psnr_mean"], places=4)
        self.assertAlmostEqual(headline["standard_psnr_at_2"],
                               report.row("standard", steps=2)["psnr_mean"], places=4)
        # The JSON form gives the same headline (what the zoo reads from metadata).
        self.assertEqual(evaluation.StepsProtocol.headline_from_evaluation(report.to_json()),
                         headline)
        out = self.get_temp_dir()
        report.write(out)
        self.assertEqual(sorted(os.listdir(out)),
                         ["per_example.csv", "psnr_curves.png", "report.csv", "report.json"])

    def test_steps_headline_steps_to_match(self):
        summary = {"meta_psnr_at_2": 20.0, "standard_psnr_at_2": 12.0, "steps_to_match": 11,
                   "standard_steps_evaluated": 300}
        self.assertEqual(evaluation.steps_headline(summary),
                         {"meta_psnr_at_2": 20.0, "standard_psnr_at_2": 12.0,
                          "steps_to_match": 11})
        summary["steps_to_match"] = None  # never reached in the evaluated steps
        self.assertEqual(evaluation.steps_headline(summary)["steps_to_match"], "> 300")
        self.assertEqual(evaluation.steps_headline("n/a"), {})
        self.assertEqual(evaluation.steps_to_reach([1.0, 2.0, 3.0, 2.5], 2.5), 2)
        self.assertIsNone(evaluation.steps_to_reach([1.0, 2.0], 2.5))


def _functional(model):
    from learnit_tf.models import FunctionalModel  # pylint: disable=import-outside-toplevel
    fmodel = FunctionalModel(model)
    return fmodel, fmodel.initial_weights()


class ZooHeadlineTest(testing.TestCase):
    """The zoo's headlines come from each kind's protocol; shipped numbers are unchanged."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(REPO, "zoo", "index.json")) as f:
            self.index = json.load(f)["entries"]

    def test_step_protocol_entries_match_their_metadata(self):
        # Images and CT: the recorded 2-step evaluation, exactly the numbers shipped before.
        expected = {"text_siren": (20.030641555786133, 12.87137222290039, 11),
                    "sdf_siren": (24.807313919067383, 13.335979461669922, 18),
                    "shepp_logan_ct": (16.710159301757812, 12.738420486450195, 111)}
        for name, (meta, standard, steps) in expected.items():
            recorded = self.index[name]["versions"]["1"]["headline"]
            headline = zoo.headline_from_metadata(zoo.describe(f"{name}@1"))
            for h in (recorded, headline):
                self.assertEqual((h["meta_psnr_at_2"], h["standard_psnr_at_2"],
                                  h["steps_to_match"]), (meta, standard, steps), name)

    def test_nerf_entry_headline_is_the_single_view_protocols(self):
        from learnit_tf.kinds.nerf.evaluation import (  # pylint: disable=import-outside-toplevel
            NerfProtocol, report_rows)
        with open(os.path.join(REPO, "docs", "nerf", "procedural_objects",
                               "single_view_rows.csv")) as f:
            rows = list(csv.DictReader(f))
        report = evaluation.Report("nerf_single_view", "procedural_chairs_nerf", report_rows(
            rows, {"meta": InnerOptimizer("sgd", 0.5), "standard": InnerOptimizer("adam", 5e-4)}))
        headline = NerfProtocol.headline(report)
        self.assertEqual(headline, {"psnr_at": "0 steps, fit on 1 view",
                                    "meta_psnr_at_0": headline["meta_psnr_at_0"],
                                    "standard_psnr_at_0": headline["standard_psnr_at_0"],
                                    "steps_to_match": "> 1000"})
        self.assertAlmostEqual(headline["meta_psnr_at_0"], 14.481, places=3)  # README table
        self.assertAlmostEqual(headline["standard_psnr_at_0"], 10.322, places=3)
        recorded = self.index["procedural_chairs_nerf"]["versions"]["1"]["headline"]
        self.assertEqual({k: recorded[k] for k in headline}, headline)
        self.assertNotIn("meta_psnr_at_2", recorded)
        # The generic 2-step numbers in its metadata are not the NeRF protocol's: no headline.
        self.assertEqual(zoo_headline.headline_from_metadata(
            zoo.describe("procedural_chairs_nerf", 1)), {})
        table = zoo.format_table(zoo.list(), markdown=True)
        line = [l for l in table.splitlines() if "procedural_chairs_nerf" in l][0]
        self.assertIn("| 14.48 vs 10.32 dB | 0 steps, fit on 1 view | > 1000 steps |", line)

    def test_report_headlines_in_table(self):
        ct = {"psnr_at": "1 view, 200 steps", "meta_psnr_at_1_view": 16.5,
              "standard_psnr_at_1_view": 13.9, "views_to_match": 4}
        legacy = {"meta_psnr_at_2": 24.5, "standard_psnr_at_2": 12.25, "steps_to_match": 40}
        rows = [{"name": n, "version": "1", "size": 10, "headline": h}
                for n, h in (("ct", ct), ("legacy", legacy), ("none", {}))]
        cells = {c[0]: c for c in zoo.table_rows(rows)}
        self.assertEqual(cells["ct"][5:8], ["16.50 vs 13.90 dB", "1 view, 200 steps", "4 views"])
        self.assertEqual(cells["legacy"][5:8], ["24.50 vs 12.25 dB", "2 steps", "40 steps"])
        self.assertEqual(cells["none"][5:8], ["", "", ""])


class ImportGraphTest(testing.TestCase):
    """No import cycle (counting function-local imports) through kinds or evaluation.

    (learnit_tf, init_io, metadata and zoo still form one, outside this layer.)
    """

    def test_no_cycle_through_kinds_evaluation_or_headlines(self):
        graph = _import_graph(os.path.join(REPO, "learnit_tf"))
        cycles = [c for c in _cycles(graph)
                  if any(m.startswith("learnit_tf.kinds")
                         or m in ("learnit_tf.evaluation", "learnit_tf.headline") for m in c)]
        self.assertEqual(cycles, [])
        # The graph sees function-local imports: the NeRF task reaches its density check.
        self.assertIn("learnit_tf.kinds.nerf.density", graph["learnit_tf.kinds.nerf.task"])
        self.assertNotIn("learnit_tf.kinds.nerf.evaluation", graph["learnit_tf.kinds.nerf.task"])


def _import_graph(package_dir):
    """{module: set of learnit_tf modules it imports anywhere in its code}."""
    root = os.path.dirname(package_dir)
    modules = {}
    for directory, _, files in os.walk(package_dir):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                modules[module.removesuffix(".__init__")] = path
    graph = {}
    for module, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        edges.add(target)
                    elif base in modules:
                        edges.add(base)
        edges.discard(module)
        graph[module] = edges
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.test.main()
