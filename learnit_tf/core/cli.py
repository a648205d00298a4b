"""Command-line helpers every command may use, a kind's own command included.

Progress bars, the `--verbose` flag and the quiet start-up it controls, error printing
(an `absl.app.UsageError` is printed alone, as "Error: ...", with a pointer to --help,
instead of absl's whole module docstring and flag list), the `--init` convention
(`is_path_like`) and the resolution of `--init` to a directory.

Resolving a zoo name needs the zoo (a higher layer), so `resolve_init_directory` calls
the resolver the package installs at import (`set_init_resolver`, done by
`learnit_tf/__init__.py`): core, and a kind's command such as NeRF's render, never import
the zoo themselves.
"""

import os
import sys

from learnit_tf.core import _startup

_INIT_RESOLVER = None


def is_path_like(init):
    """Whether `--init` names a directory rather than a zoo entry.

    Path-like: it contains a path separator, or starts with "." or "~" (pass
    "./NAME" for a folder in the current directory). Anything else is a zoo name
    ("name" or "name@version").

    >>> is_path_like("./text_siren"), is_path_like("text_siren@4")
    (True, False)
    """
    init = os.fspath(init)
    return (os.sep in init or "/" in init or (os.altsep or "/") in init
            or init.startswith((".", "~")))


def set_init_resolver(resolver):
    """Installs callable(init, log) -> (directory, from_zoo) for `resolve_init_directory`."""
    global _INIT_RESOLVER
    _INIT_RESOLVER = resolver


def resolve_init_directory(init, log=None):
    """(local directory, from_zoo) of an init directory or a verified zoo name[@version].

    See `learnit_tf.commands.init_args.resolve_init_directory` (the installed resolver).
    """
    if _INIT_RESOLVER is None:
        raise RuntimeError("No init resolver is installed (import learnit_tf first).")
    return _INIT_RESOLVER(init, log)


def define_verbose_flag():
    """Defines `--verbose` once (commands and a kind's own command both call this)."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "Show TensorFlow start-up lines and INFO logging.")


def print_usage_error(shorthelp=False, writeto_stdout=False, detailed_error=None,
                      exitcode=None):
    """`absl.app.usage` for the commands: --help as absl prints it, an error alone."""
    if detailed_error is None:
        return _ABSL_USAGE[0](shorthelp, writeto_stdout, detailed_error, exitcode)
    stream = sys.stdout if writeto_stdout else sys.stderr
    stream.write(f"Error: {detailed_error}\n(Run with --help for the usage.)\n")
    stream.flush()
    if exitcode is not None:
        sys.exit(exitcode)
    return None


# absl's own `app.usage`, kept when `install_command_behaviour` replaces it.
_ABSL_USAGE = []


def install_command_behaviour():
    """For a command module, at import: `--verbose`, and usage errors printed alone.

    absl.app.run reports a UsageError through the module-level `app.usage`; replacing
    it here makes every command print its errors alone.
    """
    from absl import app  # pylint: disable=import-outside-toplevel
    define_verbose_flag()
    if not _ABSL_USAGE:
        _ABSL_USAGE.append(app.usage)
        app.usage = print_usage_error


def configure_logging():
    """Sets absl logging for a command from --verbose (call at the start of main)."""
    from absl import flags, logging  # pylint: disable=import-outside-toplevel
    verbose = flags.FLAGS["verbose"].value if flags.FLAGS.is_parsed() else \
        _startup.verbose_requested()
    logging.set_verbosity(logging.INFO if verbose else logging.WARNING)


def reader_options(kind, reader, flag_values):
    """The flags (name -> value, None = not given) to pass to a kind's fit reader.

    Raises:
        ValueError naming the flags that the kind's reader does not take.
    """
    import inspect  # pylint: disable=import-outside-toplevel
    given = {name: value for name, value in flag_values.items() if value is not None}
    accepted = inspect.signature(reader).parameters
    wrong = sorted(set(given) - set(accepted))
    if wrong:
        usable = sorted(set(accepted) & set(flag_values)) or ["none"]
        raise ValueError(f"--{', --'.join(wrong)} do(es) not apply to {kind.name} inits "
                         f"(options for {kind.name}: {', '.join(usable)}).")
    return given


class StepProgress:
    """A Keras progress bar (with ETA) over a known total number of optimization steps."""

    def __init__(self, total_steps, verbose=1):
        import keras  # pylint: disable=import-outside-toplevel
        self.bar = keras.utils.Progbar(max(1, int(total_steps)), verbose=verbose,
                                       unit_name="step")
        self.done = 0

    def add(self, steps, **values):
        self.done += int(steps)
        self.bar.update(self.done, values=list(values.items()) or None)
