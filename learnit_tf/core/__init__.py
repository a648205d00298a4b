"""Layer 1 of learnit_tf: what every other layer and every signal kind may import.

The kind registry (`registry`: SignalKind, Metric, ReaderOption, register_kind), the
task interface (`task`), what a kind's reader of a user's file returns (`fit_input`),
the coordinate grid images and CT share (`grids`), the one atomic writer (`atomic`),
shared-file locks (`locks`), command output folders (`output_dir`), command-line
helpers (`cli`), the version and quiet start-up.

Nothing here imports a higher layer or a kind (tests/test_imports.py), and importing
this package imports none of its modules (each is imported where it is used).
"""
