"""Tests of the worst-case-across-views fit-recipe choice (`anatomy_recipe`)."""

import numpy as np

from learnit_tf import testing
from learnit_tf.evaluation.baselines import standard_init
from learnit_tf.kinds.ct import anatomy_recipe
from learnit_tf.models import FourierFeatureMLP

METADATA = {"hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 10.0,
                                "inner_steps": 2}}


def _model():
    return FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
                             output_activation="sigmoid", seed=0)


def _images():
    rng = np.random.default_rng(0)
    return [rng.uniform(0, 1, (8, 8)).astype(np.float32) for _ in range(2)]


class SelectAcrossViewsTest(testing.TestCase):

    def test_keeps_the_candidate_with_the_largest_worst_margin(self):
        model, images = _model(), _images()
        best, rows = anatomy_recipe.select_recipe_across_views(
            model, METADATA, images, views=(1, 2), steps=3, learning_rates=(1e-3,),
            progress=None)
        self.assertEqual([r["recipe"] for r in rows],
                         ["standard: adam(0.001)", "sgd(10)", "sgd(10)x2 then adam(0.001)"])
        standard = {v: rows[0]["psnr"][v] for v in (1, 2)}
        for row in rows[1:]:  # The margin is recomputed from the rows' own means.
            want = min(row["psnr"][v] - standard[v] for v in (1, 2))
            self.assertAlmostEqual(row["worst_margin"], want, places=3)
        top = max(rows[1:], key=lambda r: r["worst_margin"])
        self.assertEqual(best.name, top["recipe"])

    def test_standard_row_is_a_fit_from_the_standard_init(self):
        model, images = _model(), _images()
        _, rows = anatomy_recipe.select_recipe_across_views(
            model, METADATA, images, views=(2,), steps=3, learning_rates=(), progress=None)
        direct = anatomy_recipe.final_psnrs(standard_init(model, 1),
                                            anatomy_recipe.STANDARD_RECIPE, images, (2,), 3)
        self.assertAlmostEqual(rows[0]["psnr"][2], float(np.mean(direct[2])), places=3)

    def test_worst_margin(self):
        self.assertEqual(anatomy_recipe.worst_margin({2: [18.0], 8: [20.0]},
                                                     {2: [17.0], 8: [21.5]}), -1.5)
