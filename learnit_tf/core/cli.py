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


_ZOO_INIT_LOADER = None


def set_zoo_init_loader(loader):
    """Installs callable(name[@version]) -> ("name@version", model, `InitMetadata`).

    The package root installs the zoo's loader, so lower layers (a warm start in
    training) can load a verified zoo init without importing the zoo.
    """
    global _ZOO_INIT_LOADER
    _ZOO_INIT_LOADER = loader


def load_zoo_init(source):
    """("name@version", model, `InitMetadata`) of zoo entry `source` (ValueError if unknown)."""
    if _ZOO_INIT_LOADER is None:
        raise RuntimeError("No zoo loader is installed (import learnit_tf first).")
    return _ZOO_INIT_LOADER(source)


def define_string_flag(name, default, help_text):
    """Defines a string flag that several commands share by name (`--init`, `--output_dir`).

    A process runs one command, but tests and notebooks import several command modules:
    a second definition of the same name with the same default reuses the first (absl
    would raise DuplicateFlagError); a different default is still an error.
    """
    from absl import flags  # pylint: disable=import-outside-toplevel
    if name in flags.FLAGS:
        existing = flags.FLAGS[name]
        if existing.default != default or not isinstance(existing.parser, flags.ArgumentParser) \
                or existing.parser.flag_type() != "string":
            raise ValueError(f"--{name} is already defined differently "
                             f"({existing.parser.flag_type()}, default {existing.default!r}).")
        return existing
    return flags.DEFINE_string(name, default, help_text)


def require_flags(*names):
    """Raises absl's UsageError naming every flag of `names` that was not given.

    Commands check this at the start of `main` instead of `flags.mark_flags_as_required`:
    absl validators stay registered process-wide, so in a process that imports several
    command modules (tests, notebooks) one command's required flags would fail another's.
    """
    from absl import app, flags  # pylint: disable=import-outside-toplevel
    missing = [name for name in names if flags.FLAGS[name].value is None]
    if missing:
        raise app.UsageError(", ".join(f"--{name}" for name in missing) +
                             (" is" if len(missing) == 1 else " are") + " required.")


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


def reader_option_table(kinds):
    """{option name: [(kind name, ReaderOption)]} of the kinds' reader options.

    Raises:
        ValueError when two kinds declare one name with different types or choices
        (one flag cannot be both).
    """
    table = {}
    for kind in kinds:
        for option in kind.reader_options:
            entries = table.setdefault(option.name, [])
            for other_kind, other in entries:
                if (other.type, tuple(other.choices)) != (option.type, tuple(option.choices)):
                    raise ValueError(
                        f"Reader option {option.name!r}: kind {kind.name!r} declares it as "
                        f"{option.type}{_choices(option)}, kind {other_kind!r} as "
                        f"{other.type}{_choices(other)}; kinds sharing an option name must "
                        "share its type.")
            entries.append((kind.name, option))
    return table


def _choices(option):
    return f" {tuple(option.choices)}" if option.choices else ""


def _disclaim_flags():
    """Flags this module defines are listed under the command that asked for them."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    flags.disclaim_key_flags()


def define_reader_flags(kinds, flag_values=None, skip=()):
    """Defines `--<name>` for every reader option of `kinds` (flags left unset are None).

    A flag shared by several kinds gets every kind's help ("image: ...; ct: ...").
    Options named in `skip` (flags the command defines itself) are left out.

    Returns:
        The sorted names of the flags defined.
    """
    from absl import flags  # pylint: disable=import-outside-toplevel
    flag_values = flags.FLAGS if flag_values is None else flag_values
    _disclaim_flags()
    table = reader_option_table(kinds)
    defining = {"string": flags.DEFINE_string, "integer": flags.DEFINE_integer,
                "float": flags.DEFINE_float, "boolean": flags.DEFINE_bool,
                "list": flags.DEFINE_list, "float_list": flags.DEFINE_list}
    names = []
    for name, entries in sorted(table.items()):
        if name in skip:
            continue
        parts = []
        for kind_name, option in entries:
            text = option.help.rstrip(".") or name
            if option.default is not None:
                text += f" [unset: {option.default}]"
            parts.append(f"{kind_name}: {text}")
        text = "; ".join(parts) + "."
        option = entries[0][1]
        if option.choices:
            flags.DEFINE_enum(name, None, list(option.choices), text, flag_values=flag_values)
        else:
            defining[option.type](name, None, text, flag_values=flag_values)
        names.append(name)
    return names


def reader_options(kind, flag_values):
    """The keyword arguments for `kind`'s reader from the reader flags' values.

    Args:
        kind: the init's `SignalKind`.
        flag_values: {flag name: value, None when not given} of the reader flags.

    Returns:
        {name: value} of the kind's options that were given (numbers of "float_list"
        options converted), plus the non-None defaults of those that were not.

    Raises:
        ValueError naming the given flags the kind's reader does not take, and the
        options it does take.
    """
    declared = {option.name: option for option in kind.reader_options}
    given = {name: value for name, value in flag_values.items() if value is not None}
    wrong = sorted(set(given) - set(declared))
    if wrong:
        usable = sorted(declared) or ["none"]
        raise ValueError(f"--{', --'.join(wrong)} do(es) not apply to {kind.name} inits "
                         f"(options for {kind.name}: {', '.join(usable)}).")
    options = {}
    for name, option in declared.items():
        value = given.get(name, option.default)
        if value is None:
            continue
        if option.type == "float_list":
            try:
                value = [float(v) for v in value]
            except (TypeError, ValueError) as e:
                raise ValueError(f"--{name} must be comma-separated numbers, got "
                                 f"{value!r}.") from e
        options[name] = value
    return options


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
