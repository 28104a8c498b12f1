"""The config nodes of the deep methods (``model/dec``, ...), generated from their estimators.

Each deep estimator declares its parameters once, as dataclass fields with their defaults
(:func:`deepseg.deep.params.param`). The method's config node is made of them: its
``_target_``, every parameter's default, and the grouped options (``autoencoder``, ``pretrain``,
``trainer``) interpolated from the command's config groups of the same names. The job's own
parameters (:data:`JOB_PARAMS`) are not in the node: the job gives them.

The declarations are read from the estimators' source (:mod:`ast`), not imported: importing
a deep estimator imports torch and Lightning, which a command that runs no deep method (and
every ``--help``) never does. A default is therefore written as a literal (a test checks that
what is read here equals the imported dataclass fields).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

#: The deep methods' config names and their estimators.
DEEP_METHODS: dict[str, str] = {
    "ae_kmeans": "deepseg.deep.latent.AEKMeans",
    "ae_gmm": "deepseg.deep.latent.AEGMM",
    "dec": "deepseg.deep.dec.DEC",
    "idec": "deepseg.deep.dec.IDEC",
    "dcn": "deepseg.deep.dcn.DCN",
    "vade": "deepseg.deep.vade.VaDE",
    "n2d": "deepseg.deep.latent.N2D",
}
#: Parameters interpolated from the command's config groups: ``autoencoder: ${autoencoder}``.
GROUPED = ("autoencoder", "pretrain", "trainer")
#: Parameters the job gives, not the config: the run's k and seed, the shared pretrained
#: network, and where checkpoints go (the job store's ``checkpoint``).
JOB_PARAMS = ("n_clusters", "random_state", "pretrained", "checkpoint")

_PACKAGE = Path(__file__).resolve().parents[1]  # deepseg/
#: The calls that declare a dataclass field with its default: ``P.param(default, ...)`` and
#: ``dataclasses.field(default=...)``.
_PARAM_CALLS = ("param", "field")


@functools.cache
def _module(name: str) -> ast.Module:
    parts = name.split(".")
    if parts[0] != "deepseg":
        raise ValueError(f"Not a deepseg module: {name}")
    source = _PACKAGE.joinpath(*parts[1:]).with_suffix(".py")
    return ast.parse(source.read_text(encoding="utf-8"))


def _class(module: str, name: str) -> tuple[ast.ClassDef, dict[str, str]]:
    """The class ``name`` of ``module``, and the module's ``from deepseg... import`` names."""
    tree = _module(module)
    imported = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepseg")
        for alias in node.names
    }
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node, imported
    raise ValueError(f"No class {name} in {module}")


def _default(call: ast.Call) -> Any:
    for keyword in call.keywords:
        if keyword.arg == "default":
            return ast.literal_eval(keyword.value)
    return ast.literal_eval(call.args[0])


def declared_fields(target: str) -> list[tuple[str, Any, str]]:
    """``(name, default, declaring class)`` of every dataclass field of the estimator class
    ``target`` (``"deepseg.deep.dec.IDEC"``), in the dataclass's order: the bases' fields first;
    a field declared again keeps its place and takes the new default."""
    module, _, name = target.rpartition(".")
    cls, imported = _class(module, name)
    fields: dict[str, tuple[Any, str]] = {}
    local = {n.name for n in _module(module).body if isinstance(n, ast.ClassDef)}
    for base in cls.bases:  # deepseg's own bases (scikit-learn's mixins declare no field)
        if isinstance(base, ast.Name) and (base.id in imported or base.id in local):
            where = imported.get(base.id, f"{module}.{base.id}")
            fields.update({n: (d, owner) for n, d, owner in declared_fields(where)})
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(node.annotation) or not isinstance(node.value, ast.Call):
            continue
        func = node.value.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in _PARAM_CALLS:
            owner = fields.get(node.target.id, (None, name))[1]
            fields[node.target.id] = (_default(node.value), owner)
    return [(n, d, owner) for n, (d, owner) in fields.items()]


def method_node(target: str) -> dict[str, Any]:
    """The config node of the deep estimator ``target``: the shared parameters (the grouped
    ones interpolated), ``_target_``, then the method's own, with their declared defaults."""
    shared: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for name, default, owner in declared_fields(target):
        if name in JOB_PARAMS:
            continue
        value = f"${{{name}}}" if name in GROUPED else default
        (shared if owner == "DeepClusterer" else own)[name] = value
    return {**shared, "_target_": target, **own}
