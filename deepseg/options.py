"""Every shared option declared once: its name, default, constraint and one line of help.

From these declarations come

* the defaults of the ``autoencoder``, ``pretrain`` and ``trainer`` config groups (registered
  with Hydra's ConfigStore by :mod:`deepseg.configs`: there is no YAML copy) and of the deep
  estimators' unset grouped options (:mod:`deepseg.deep.skeleton`);
* the validation every entry point runs once: :meth:`Group.check` for a group,
  :func:`check_n_clusters` for ``n_clusters`` against the data, :meth:`Option.check` for the
  rest; the estimators' parameter tables take their constraints from here
  (:mod:`deepseg.deep.estimator`, and :mod:`deepseg.validation` for scikit-learn's
  ``_parameter_constraints`` of :mod:`deepseg.auto` and :mod:`deepseg.baselines`);
* the "== Options ==" part of every command's ``--help`` (:func:`deepseg.cli.common.help_options`),
  which lists each option of the command with its value in the composed config and the help
  line declared here.

The value of a command's own top-level option (``seeds``, ``chunk_size``, ...) is written in the
command's config, once: it differs between commands (``seed`` is 0 for deepseg-train, null for
deepseg-benchmark), so those are declared here with their help line and, where they have one,
their constraint, and the help shows the composed value. Like scikit-learn's
``_parameter_constraints``, this module imports nothing of deepseg but the constraint
vocabulary (:mod:`deepseg.constraints`), so any module can import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from deepseg.constraints import (
    BOOL,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    NONE,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    AnyOf,
    Interval,
    ListOf,
    Options,
    check_value,
)

#: An option whose value the declaration does not give (a command's config writes it).
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
#: The value of an option that "auto" resolves (by the data, or by choose-k for n_clusters).
AUTO = "auto"


@dataclass(frozen=True)
class Option:
    """One option: ``name``, ``default`` (:data:`UNSET` when a command's config writes it),
    ``constraint`` (None when nothing checks it) and one line of ``help``."""

    name: str
    default: Any
    constraint: Any
    help: str

    def check(self, value: Any, owner: str | None = None) -> None:
        """Raise "The '<name>' parameter [of <owner>] must be ... Got ... instead."."""
        if self.constraint is not None:
            check_value(owner, self.name, value, self.constraint)


class Checked(dict[str, Any]):
    """A group's options merged with its defaults and checked: :meth:`Group.check` returns it
    and takes it back unchecked, so that a fit checks each group once."""

    def __init__(self, group: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.group = group


@dataclass(frozen=True)
class Group:
    """Options under one config group (``pretrain.epochs``): its ``name``, one line of
    ``help`` and its ``options``. An ``open`` group takes other keys too, unchecked (the
    ``trainer`` group: any option of lightning.Trainer passes through)."""

    name: str
    help: str
    options: tuple[Option, ...]
    open: bool = False

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)

    def defaults(self) -> dict[str, Any]:
        """``{name: default}`` of every option, in declaration order (a new dict)."""
        return {o.name: _copy(o.default) for o in self.options}

    def merged(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The defaults updated with ``given``; an unknown key is an error naming the valid
        ones."""
        out = self.defaults()
        if given:
            unknown = sorted(set(given) - set(out))
            if unknown and not self.open:
                raise ValueError(
                    f"Unknown {self.name} option(s) {unknown}; valid options: {sorted(out)}"
                )
            out.update(given)
        return out

    def check(self, given: Mapping[str, Any] | None) -> Checked:
        """``given`` merged with the defaults and checked, once: a :class:`Checked` of this
        group is returned as it is.

        Raises:
            ValueError: "The pretrain option 'lr' must be a float in the range (0, inf). Got 0
                instead.", or an unknown option (naming the valid ones).
        """
        if isinstance(given, Checked) and given.group == self.name:
            return given
        values = self.merged(given)
        for option in self.options:
            value = values[option.name]
            if option.constraint is not None and not option.constraint.accepts(value):
                raise ValueError(
                    f"The {self.name} option '{option.name}' must be "
                    f"{option.constraint.describe()}. Got {value!r} instead."
                )
        return Checked(self.name, values)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# -- n_clusters and the seed -------------------------------------------------------------------

#: At least one cluster, as scikit-learn's KMeans: what every estimator's ``n_clusters`` takes.
#: The commands also take null (the dataset's own) and 'auto' (choose-k), and ask for
#: :data:`COMMAND_MIN_CLUSTERS` (their label-free metrics need two segments).
N_CLUSTERS = Option(
    "n_clusters",
    None,
    Interval(int, 1, None),
    "number of segments; null: the dataset's own; auto: choose-k (no labels)",
)
COMMAND_MIN_CLUSTERS = 2

#: A seed: a non-negative int, or None for a fresh one (the estimators' ``random_state``).
SEED = Option(
    "seed",
    None,
    AnyOf((Interval(int, 0, None), NONE)),
    "the seed (deepseg-train; a sweep: -m seed=0,1,2); elsewhere shorthand for seeds=[N]",
)
#: The estimators' name of the seed (scikit-learn's), with the same constraint.
RANDOM_STATE = Option("random_state", None, SEED.constraint, "the seed (None: a fresh one)")
#: A seed that must be given (deepseg-train's ``seed``, every item of ``seeds``).
SEED_VALUE = Interval(int, 0, None)


def check_n_clusters(
    k: Any,
    n_samples: int | None = None,
    *,
    owner: str | None = None,
    at_least: int = 1,
    or_auto: bool = False,
) -> int:
    """The one check of ``n_clusters`` against the data: an int (:data:`N_CLUSTERS`) in the
    range [``at_least``, ``n_samples``].

    Args:
        k: the value.
        n_samples: rows of the data (None: no upper bound).
        owner: the estimator or function, for the message (None: a command's option).
        at_least: the lower bound (the commands: :data:`COMMAND_MIN_CLUSTERS`).
        or_auto: say that 'auto' is accepted too (the commands resolve it before).

    Returns:
        ``k`` as an int.

    Raises:
        ValueError: "The 'n_clusters' parameter of DEC must be an int in the range
            [1, n_samples=5]. Got 6 instead."
    """
    high = None if n_samples is None else int(n_samples)
    bounds = Interval(int, at_least, high, closed="both")
    if not (N_CLUSTERS.constraint.accepts(k) and bounds.accepts(k)):
        upper = "inf)" if high is None else f"n_samples={high}]"
        also = " or 'auto'" if or_auto else ""
        of = f" of {owner}" if owner else ""
        raise ValueError(
            f"The 'n_clusters' parameter{of} must be an int in the range [{at_least}, {upper}"
            f"{also}. Got {k!r} instead."
        )
    return int(k)


# -- the autoencoder and its pretraining, shared by every deep method --------------------------

ACTIVATIONS = ("relu", "gelu", "elu", "silu", "tanh")
NORMS = ("none", "batch", "layer")
NOISE_KINDS = ("none", "gaussian", "mask", "swap")
LR_SCHEDULES = ("constant", "cosine")

AUTOENCODER = Group(
    "autoencoder",
    "the deep methods' architecture (deepseg.nn.Autoencoder)",
    (
        Option("hidden_dims", [256, 256, 512], ListOf(POSITIVE_INT, "a list of positive ints"),
               "widths of the encoder's hidden layers (the decoder mirrors them)"),
        Option("latent_dim", 10, POSITIVE_INT, "width of the embedding"),
        Option("activation", "relu", Options(ACTIVATIONS), " | ".join(ACTIVATIONS)),
        Option("norm", "none", Options(NORMS), "after each hidden layer: " + " | ".join(NORMS)),
        Option("dropout", AUTO,
               AnyOf((Interval(float, 0, 1, closed="left"), Options((AUTO,)))),
               "pretraining only; auto: 0.2 for an input narrower than the first hidden "
               "layer, else 0"),
    ),
)  # fmt: skip

PRETRAIN = Group(
    "pretrain",
    "autoencoder pretraining (deepseg.deep.skeleton.pretrain_autoencoder)",
    (
        Option("epochs", 30, NON_NEGATIVE_INT, "epochs (small tables get more: min_steps)"),
        Option("min_steps", AUTO, AnyOf((NON_NEGATIVE_INT, Options((AUTO,)))),
               "at least this many steps; auto: 600, or 6,000 for an input at least as wide "
               "as the first hidden layer"),
        Option("max_budget_epochs", 200, NON_NEGATIVE_INT,
               "... but min_steps raises the epochs to at most this many"),
        Option("max_steps", 20_000, NON_NEGATIVE_INT,
               "large tables: at most ceil(max_steps / steps an epoch) epochs (0: no cap)"),
        Option("batch_size", 256, POSITIVE_INT, "rows a step"),
        Option("lr", 1e-3, POSITIVE_FLOAT, "Adam's learning rate"),
        Option("lr_schedule", "constant", Options(LR_SCHEDULES),
               "constant | cosine (decays to 0 over the run)"),
        Option("weight_decay", 0.0, NON_NEGATIVE_FLOAT, "Adam's weight decay"),
        Option("noise", "none", Options(NOISE_KINDS),
               "input corruption: " + " | ".join(NOISE_KINDS)),
        Option("noise_level", 0.0, NON_NEGATIVE_FLOAT, "corruption strength"),
    ),
)  # fmt: skip

#: The Lightning Trainer of every training phase (deepseg.deep.skeleton.make_trainer). Options
#: with no constraint are checked by lightning.Trainer itself; any other key passes through to it.
TRAINER = Group(
    "trainer",
    "lightning.Trainer options of every training phase (deepseg.deep.skeleton.make_trainer)",
    (
        Option("accelerator", "auto", None, "auto (a GPU when present) | cpu | gpu | ..."),
        Option("devices", 1, None, "devices of a fit (trainer=ddp: 2 processes)"),
        Option("strategy", "auto", None, "auto | ddp_spawn (trainer=ddp) | ..."),
        Option("precision", "32-true", None, "32-true | bf16-mixed (bfloat16 autocast) | ..."),
        Option("enable_progress_bar", False, None, "Lightning's progress bar"),
        Option("capture_step", False, BOOL,
               "CUDA only: each step as CUDA graphs (torch.compile), a fused optimiser "
               "(deepseg's own)"),
    ),
    open=True,
)  # fmt: skip

#: The groups whose defaults come from this module (their configs are generated).
GROUPS = (AUTOENCODER, PRETRAIN, TRAINER)


# -- the commands' own options: their help lines (values: each command's config) ---------------

COMMAND_OPTIONS: tuple[Option, ...] = (
    N_CLUSTERS,
    SEED,
    Option("seeds", UNSET, None, "the seeds; one result row per (method, seed)"),
    Option("methods", UNSET, None, "the methods to run, by name: the keys of baseline and model"),
    Option("method", UNSET, None, "the method's name in the results (default: the model choice)"),
    Option("task_name", UNSET, None, "the folder under paths.output_dir"),
    Option("noise_policy", UNSET, None,
           "noise label -1 in label metrics: singletons | cluster | exclude"),
    Option("features_memmap_gb", UNSET, None,
           "a feature matrix above this size (GB) is memory-mapped on disk (null: never)"),
    Option("resume", UNSET, None,
           "a job with a finished record in resume_dir is not run again (a changed option or "
           "input runs it again)"),
    Option("resume_dir", UNSET, None, "where the job records are"),
    Option("checkpoint.enabled", UNSET, None, "deep fits write checkpoints (resume mid-fit)"),
    Option("checkpoint.every_n_epochs", UNSET, None,
           "a checkpoint every n epochs (0: not by count)"),
    Option("checkpoint.every_n_seconds", UNSET, None,
           "... or once this long has passed (and at each phase end)"),
    Option("checkpoint.keep", UNSET, None, "checkpoints kept per phase"),
    Option("second_view.enabled", UNSET, None,
           "text: refine each partition with a classifier on the TF-IDF words (auto | true | "
           "false)"),
    Option("second_view.C", UNSET, None, "inverse regularisation of the logistic regression"),
    Option("second_view.core_fraction", UNSET, None,
           "share of each cluster (its most confident documents) that trains it"),
    Option("second_view.max_iter", UNSET, None, "rounds at most"),
    Option("second_view.tol", UNSET, None, "stop when a round moves fewer than this share"),
    Option("second_view.embedding_weight", UNSET, None,
           "the embedding's weight beside the words (0: words alone)"),
    Option("objective.metric", UNSET, None,
           "the value returned to a sweeper (a name in deepseg.metrics)"),
    Option("objective.space", UNSET, None, "features | embedding"),
    Option("objective.allow_label_objective", UNSET, None,
           "allow label metrics (acc, nmi, ...) as the objective"),
    Option("baseline.NAME.KEY", UNSET, None,
           "an option of a classic method, e.g. baseline.gmm.covariance_type=full"),
    Option("model.NAME.KEY", UNSET, None, "an option of a deep method, e.g. model.dec.lr=0.001"),
    Option("model.auto.candidates.NAME", UNSET, None,
           "set to null: auto (the label-free choice of method) without it"),
    Option("only", UNSET, None, "run only these datasets (keys of datasets), e.g. [wine,glass]"),
    Option("text_model", UNSET, None,
           "sentence datasets: null, the packaged MiniLM ('text' extra), or a local model dir"),
    Option("datasets.KEY.data.KEY", UNSET, None,
           "an option of one dataset, e.g. datasets.wine.data.labels=0"),
    Option("datasets.KEY.features.KEY", UNSET, None, "the features of one dataset"),
    Option("space", UNSET, None, "features | latent (an autoencoder pretrained per seed)"),
    Option("bundle", UNSET, None, "the bundle directory of a training run"),
    Option("input", UNSET, None, "CSV or Parquet file of new customers"),
    Option("output", UNSET, None, "the file to write"),
    Option("chunk_size", UNSET, None, "rows read and processed at a time"),
    Option("threads", UNSET, None, "torch threads for the network"),
    Option("embedding", UNSET, None, "add the embedding columns z_0, z_1, ..."),
    Option("drift", UNSET, None,
           "compare the input with the training data: <output>.drift.json/.md"),
    Option("encoding", UNSET, None, "CSV encoding (null: the training data's, else detected)"),
    Option("sep", UNSET, None, "CSV separator (null: the training data's, else sniffed)"),
    Option("sheet", UNSET, None, "the Excel sheet of an .xlsx input"),
    Option("format", UNSET, None, "onnx | torch_export"),
    Option("dir", UNSET, None, "a run or multirun directory"),
    Option("out", UNSET, None, "where to write the files (null: <dir>/aggregate)"),
)  # fmt: skip

#: One line for each config group that is not declared option by option here, shown as
#: ``<group>.KEY`` (or the listed form).
GROUP_HELP: dict[str, tuple[tuple[str, str], ...]] = {
    "data": (("data.KEY", "an option of the dataset, e.g. data.path=customers.csv"),),
    "features": (("features.KEY", "the feature pipeline (configs/features/default.yaml)"),),
    "model": (
        ("model.KEY", "an option of the method, e.g. model.lr=0.001"),
        ("model.candidates.NAME", "set to null: model=auto without that candidate"),
    ),
    "trainer": (("trainer.KEY", "any other lightning.Trainer option: +trainer.KEY=VALUE"),),
    "logger": (("logger.KEY", "the training-curve logger"),),
    "k_selection": (("k_selection.KEY", "choose-k, e.g. k_selection.k_range=[2,8]"),),
    "report": (("report.KEY", "the segment report (with report=default)"),),
    "paths": (("paths.KEY", "paths.data_dir, paths.output_dir"),),
}


def command_option(name: str) -> Option | None:
    """The declaration of a command's option (a dotted name for a nested one), or None."""
    for option in COMMAND_OPTIONS:
        if option.name == name:
            return option
    return None
