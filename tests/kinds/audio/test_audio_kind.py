"""The audio kind through the shared kind checks (`learnit_tf.testing.KindTestCase`)."""

import numpy as np

from learnit_tf import testing
from learnit_tf.kinds.audio import AudioTask
from learnit_tf.kinds.audio.procedural import render_clip
from learnit_tf.meta import InnerOptimizer, MetaConfig
from learnit_tf.models import Siren

NUM_SAMPLES, SAMPLE_RATE = 256, 2000


def _siren():
    return Siren(in_features=1, out_features=1, output_offset=0.0, width=64, depth=4,
                 w0=300.0, seed=0)


def _clips(split_index, count):
    return [{"waveform": render_clip(np.random.RandomState([7, split_index, i]), NUM_SAMPLES,
                                     SAMPLE_RATE)} for i in range(count)]


class AudioKindTest(testing.KindTestCase):

    def test_audio_kind(self):
        # Procedural notes (different pitches, envelopes, onsets): a tiny MAML init must
        # beat the standard init after 2 SGD steps on held-out clips (measured: 24.2 vs
        # 20.2 dB; width 32 / depth 3 learns nothing in 40 steps).
        sgd = InnerOptimizer("sgd", 1e-3)
        self.run_kind_test(
            "audio", AudioTask(NUM_SAMPLES, SAMPLE_RATE), _siren,
            train_examples=_clips(0, 8), held_out_examples=_clips(1, 4),
            meta_config=MetaConfig("maml", 2, sgd), outer_learning_rate=1e-4, meta_steps=40,
            meta_batch_size=2, fit_steps=2, fit_optimizer=sgd, min_psnr_gain=2.0)

    def test_audio_kind_with_sample_subsets(self):
        task = AudioTask(NUM_SAMPLES, SAMPLE_RATE, samples_per_step=64)
        examples = [dict(ex, seed=np.array([0, i], np.int32))
                    for i, ex in enumerate(_clips(2, 2))]
        self.run_task_config_test(task)
        self.run_finite_losses_test(task, _siren, examples[0])
        self.run_bad_input_test(task, examples[0], fields=["waveform"])
        meta_batch = {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}
        self.run_xla_graph_test(task, _siren, meta_batch, MetaConfig("maml", 1),
                                outer_learning_rate=1e-3)
