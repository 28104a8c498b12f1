"""What every command-line entry point shares: where the configs are, and clean error exits."""

from __future__ import annotations

import atexit
import difflib
import functools
import gc
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import deepseg.configs  # noqa: F401  (registers the config groups generated from deepseg.options)
from deepseg.options import GROUP_HELP, GROUPS, SEED, UNSET, command_option

# Errors a user can act on: reported as one line, without a traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


def config_dir() -> str:
    """The configs directory on disk: $DEEPSEG_CONFIG_DIR, else the package's own
    ``deepseg/configs`` (shipped in the wheel)."""
    env = os.environ.get("DEEPSEG_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    return str(Path(__file__).resolve().parents[1] / "configs")


def config_path() -> str:
    """What the Hydra apps load their primary config from: ``pkg://deepseg.configs`` (works from
    any directory and any install), or $DEEPSEG_CONFIG_DIR when it is set. A user's own config
    directory extends the packaged one with ``--config-dir DIR`` or
    ``hydra.searchpath=[file://DIR]``."""
    env = os.environ.get("DEEPSEG_CONFIG_DIR")
    return str(Path(env).resolve()) if env else "pkg://deepseg.configs"


_exit_hook = False


def _freeze_at_exit() -> None:
    """Register :func:`gc.freeze` to run at interpreter exit (once per process).

    After a command, Python's shutdown collects every object that torch, Lightning and pandas
    created: 2.3-2.8 s on two cores after `import torch, lightning.pytorch, sklearn, matplotlib,
    pandas`, 0.3-0.4 s once they are frozen. It runs after the command has returned and the
    other exit handlers (logging's flush among them) still run after it; every file deepseg
    writes is closed and synced before that, so no output depends on the final collection.
    """
    global _exit_hook
    if not _exit_hook:
        atexit.register(gc.freeze)
        _exit_hook = True


def setup_entry_point() -> None:
    """Process-wide settings that belong to the command line, not to the library.

    lightning 2.6 on torch 2.13 warns about its own use of a torch internal at every fit, and
    announces the hardware at every Trainer construction: nothing a user can act on, so the
    command line keeps them out of the terminal. Importing deepseg changes neither.
    """
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)


def report_errors(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn user errors into ``<command>: error: <message>`` on stderr and exit code 2.

    With HYDRA_FULL_ERROR=1 the exception propagates with its traceback.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            setup_entry_point()
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as exc:
                if full_error():
                    raise
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                print(f"{command}: error: {message}", file=sys.stderr)
                sys.exit(2)

        return wrapper

    return decorate


# --- one idiom for every console script ----------------------------------------------------

_FULL_ERROR = "HYDRA_FULL_ERROR"
# The user's HYDRA_FULL_ERROR while a command composes its config (None: no command running)
_user_full_error: bool | None = None
# The running command's name, for error lines
_command = "deepseg"


def full_error() -> bool:
    """Whether the user asked for full tracebacks (HYDRA_FULL_ERROR=1)."""
    if _user_full_error is not None:
        return _user_full_error
    return os.environ.get(_FULL_ERROR) == "1"


def _restore_full_error() -> None:
    if _user_full_error is False:
        os.environ.pop(_FULL_ERROR, None)


class ConfigComposed(Callback):
    """Hydra callback: the config is composed, so Hydra reports later errors as usual.

    :func:`run_command` sets HYDRA_FULL_ERROR=1 while Hydra parses the command line and composes
    the config, so that composition errors reach it as exceptions (Hydra itself would print
    them over several lines and exit 1); at the start of the run this puts the user's setting
    back, before any job (or launcher process) starts.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _restore_full_error()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _restore_full_error()
        if full_error():
            return  # the job's composition raises, with its traceback
        # Hydra turns a callback's exception into a warning: exit here
        try:
            check_sweep_keys(config)
        except ValueError as exc:
            print(f"{_command}: error: {exc}", file=sys.stderr)
            sys.exit(2)


def check_sweep_keys(config: DictConfig) -> None:
    """Refuse, before any job starts, a swept key the config does not have (``-m modle=a,b``).

    Hydra applies sweep overrides only when it composes each job, so without this check a
    misspelt swept key fails in the launcher, over several lines.

    Raises:
        ValueError: names the key and the closest valid one.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
    task = [str(o) for o in OmegaConf.select(config, "hydra.overrides.task") or []]
    overrides = OverridesParser.create().parse_overrides(task)
    # the keys under a swept group depend on each job's choice: Hydra checks them per job
    swept = [
        o.key_or_group for o in overrides if o.key_or_group in choices and o.is_sweep_override()
    ]
    for override in overrides:
        key = override.key_or_group
        if override.package is not None or override.is_add() or override.is_force_add():
            continue
        if override.is_delete() or key in choices or key.startswith("hydra."):
            continue
        if any(key.startswith(f"{group}.") for group in swept):
            continue
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(config, parent) if parent else config
        if isinstance(node, DictConfig) and leaf not in node:
            options = _option_names(node, f"{parent}." if parent else "")
            where = f" of {parent}" if parent else ""
            raise ValueError(
                f"Unknown option '{key}'{_did_you_mean(key, options)}. "
                f"Options{where}: {', '.join(options)}."
            )


def run_command(command: str, app: Callable[[], Any], argv: Sequence[str] | None = None) -> Any:
    """Run the ``@hydra.main`` function ``app`` as the console script ``command``.

    Misspelt options, unknown config group options and unparsable overrides end with one
    ``<command>: error: <message>`` line on stderr (naming the closest valid key) and exit code 2,
    like the errors of the task itself (:func:`report_errors`). HYDRA_FULL_ERROR=1 keeps the
    traceback.

    Args:
        command: the console script's name, for the error line.
        app: the function decorated with ``@hydra.main``.
        argv: the arguments (default: ``sys.argv[1:]``); given, they replace ``sys.argv`` for
            the run (in-process calls and tests).
    """
    global _command, _user_full_error
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    setup_entry_point()
    _freeze_at_exit()
    saved_argv = sys.argv
    saved_env = os.environ.get(_FULL_ERROR)
    _user_full_error = saved_env == "1"
    _command = command
    os.environ[_FULL_ERROR] = "1"
    if argv is not None:
        sys.argv = [command, *argv]
    try:
        return app()
    except (HydraException, OmegaConfBaseException, *USER_ERRORS) as exc:
        if _user_full_error or os.environ.get(_FULL_ERROR) != "1":
            raise  # asked for, or raised after composition: not a command-line error
        print(f"{command}: error: {describe_config_error(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop(_FULL_ERROR, None)
        else:
            os.environ[_FULL_ERROR] = saved_env
        _user_full_error = None


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines()]
    kept = [line for line in lines if line and not line.startswith(("See https://", "full_key:"))]
    kept = [line for line in kept if not line.startswith(("object_type=", "To append to"))]
    return "; ".join(kept).replace(":;", ":")


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``name`` (compared by their last
    dotted part), or nothing."""
    leaves = {c.rpartition(".")[2]: c for c in candidates}
    close = difflib.get_close_matches(name.rpartition(".")[2], list(leaves), n=1, cutoff=0.6)
    return f" (did you mean '{leaves[close[0]]}'?)" if close else ""


def _option_names(node: Any, prefix: str) -> list[str]:
    """The keys of ``node`` (a config node), with ``prefix``; the root adds its config groups."""
    if not isinstance(node, DictConfig):
        return []
    names = [str(k) for k in node.keys() if k != "hydra"]
    root = node._get_root() if prefix == "" else None
    if root is not None and "hydra" in root and OmegaConf.select(root, "hydra.runtime.choices"):
        choices = OmegaConf.select(root, "hydra.runtime.choices")
        names += [str(g).split("@")[0] for g in choices if not str(g).startswith("hydra")]
    return sorted({f"{prefix}{n}" for n in names})


def describe_config_error(exc: BaseException) -> str:
    """One line for a command-line error found while Hydra composes the config."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and "not in struct" in str(cause):
        full_key = str(getattr(cause, "full_key", "") or getattr(cause, "key", ""))
        parent, _, _ = full_key.rpartition(".")
        prefix = f"{parent}." if parent else ""
        options = _option_names(getattr(cause, "parent_node", None), prefix)
        where = f" of {parent}" if parent else ""
        listed = f" Options{where}: {', '.join(options)}." if options else ""
        return f"Unknown option '{full_key}'{_did_you_mean(full_key, options)}.{listed}"
    if isinstance(exc, MissingConfigException) and exc.options:
        missing = exc.missing_cfg_file or ""
        group, _, name = str(missing).rpartition("/")
        options = sorted(exc.options)
        return (
            f"No option '{name}' in the config group '{group}'{_did_you_mean(name, options)}. "
            f"Options of {group}: {', '.join(options)}."
        )
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return _one_line(str(exc)) + (
        f" ({_one_line(str(exc.__cause__))})"
        if exc.__cause__ is not None and cause is not exc and str(exc.__cause__) not in str(exc)
        else ""
    )


def resolve_seed(cfg: DictConfig) -> None:
    """``seed=N`` as the shorthand of ``seeds=[N]`` (the name deepseg-train uses).

    Raises:
        ValueError: ``seed`` is not a seed (:data:`deepseg.options.SEED`).
    """
    seed = cfg.get("seed")
    SEED.check(seed)
    if seed is not None:
        cfg.seeds = [seed]


def group_options(group: str) -> list[str]:
    """A config group's options: its files and what :mod:`deepseg.configs` generates."""
    from hydra.core.config_store import ConfigStore

    root = Path(config_dir()) / group
    files = {p.stem for p in root.glob("*.yaml")}
    try:
        stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    except OSError:  # no such group in the store
        stored = set()
    return sorted(files | stored)


def help_groups(*, _root_: DictConfig) -> str:
    """The ``${deepseg_help_groups:}`` resolver of the help templates: one line per config
    group of the running app (its defaults list), with the chosen option and the others."""
    choices = OmegaConf.select(_root_, "hydra.runtime.choices") or {}
    lines = []
    # Hydra records the choices from the last default to the first
    for group, choice in reversed(list(choices.items())):
        if str(group).startswith("hydra") or "@" in str(group):
            continue
        chosen = f"{group}={'null' if choice is None else choice}"
        lines.append(f"  {chosen:<32} options: {', '.join(group_options(str(group)))}")
    return "\n".join(lines) if lines else "  (none)"


#: the width of an option's name and value in --help, before its help line
_HELP_WIDTH = 32
#: the help line of an option that has no declaration (a test keeps it out of every --help)
UNDECLARED = "(no declared help)"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_shown(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def _help_line(name: str, help_text: str, value: Any = UNSET) -> str:
    shown = name if value is UNSET else f"{name}={_shown(value)}"
    if value == "???":
        shown, help_text = f"{name}=...", f"{help_text} (required)"
    pad = " " * max(_HELP_WIDTH - len(shown), 1)
    return f"  {shown}{pad}{help_text}"


def _node_value(root: DictConfig, key: str) -> Any:
    """The composed value of ``key``, interpolations unresolved (``${paths.output_dir}/...``)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(root, parent) if parent else root
    if not isinstance(node, DictConfig) or leaf not in node.keys():
        return UNSET
    if OmegaConf.is_missing(node, leaf):
        return "???"
    values = OmegaConf.to_container(node, resolve=False)
    assert isinstance(values, dict)
    return values[leaf]


def _option_lines(root: DictConfig, key: str) -> list[str]:
    """The --help lines of one top-level option: its declaration, or those of its keys."""
    option = command_option(key)
    if option is not None:
        return [_help_line(key, option.help, _node_value(root, key))]
    from deepseg.options import COMMAND_OPTIONS

    lines = []
    for nested in COMMAND_OPTIONS:
        if nested.name.startswith(f"{key}."):
            value = _node_value(root, nested.name)
            if value is UNSET and not any(part.isupper() for part in nested.name.split(".")):
                continue  # a key this command does not have
            lines.append(_help_line(nested.name, nested.help, value))
    return lines or [_help_line(key, UNDECLARED, _node_value(root, key))]


def help_options(*, _root_: DictConfig) -> str:
    """The ``${deepseg_help_options:}`` resolver of the help templates: every option of the
    running command, with its value in the composed config and the help line declared in
    :mod:`deepseg.options`; then its config groups' options: every option of a group declared
    there (``pretrain.epochs=30``), one line for the others (``data.KEY``)."""
    choices = OmegaConf.select(_root_, "hydra.runtime.choices") or {}
    groups = [str(g) for g in reversed(list(choices)) if not str(g).startswith("hydra")]
    groups = [g for g in groups if "@" not in g]
    lines = []
    for key in _root_:
        if key != "hydra" and key not in groups:
            lines += _option_lines(_root_, str(key))
    declared = {group.name: group for group in GROUPS}
    for name in groups:
        if name in declared and name in _root_:
            for option in declared[name]:
                value = _node_value(_root_, f"{name}.{option.name}")
                lines.append(_help_line(f"{name}.{option.name}", option.help, value))
        for shown, help_text in GROUP_HELP.get(name, ()):
            lines.append(_help_line(shown, help_text))
    # Hydra fills the template in with string.Template: a value's "$" is written "$$"
    return "\n".join(lines).replace("$", "$$") if lines else "  (none)"


for _name, _resolver in (("deepseg_help_groups", help_groups),
                         ("deepseg_help_options", help_options)):  # fmt: skip
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)
