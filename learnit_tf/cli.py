"""Moved (issue 25): the kind-free helpers to `learnit_tf.core.cli`, the `--init`
resolution (zoo, task, optimizer) to `learnit_tf.commands.init_args`.

This alias re-exports both so `learnit_tf.cli.<name>` keeps working; it sits in the
commands layer (it imports `commands.init_args`), so library modules import
`learnit_tf.core.cli` instead.
"""

import warnings

warnings.warn(f"{__name__} is deprecated (issue 25 grouped learnit_tf by layer); import "
              "learnit_tf.core.cli or learnit_tf.commands.init_args instead.", DeprecationWarning, stacklevel=2)

# pylint: disable=unused-import
from learnit_tf.commands.init_args import (fit_optimizer, kind_of_init,  # noqa: F401
                                           resolve_init, resolve_init_directory)
from learnit_tf.core.cli import (StepProgress, configure_logging, is_path_like,  # noqa: F401
                                 reader_options)
