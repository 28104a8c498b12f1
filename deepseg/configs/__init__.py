"""The Hydra configs of deepseg, shipped with the package (found as ``pkg://deepseg.configs``).

The ``autoencoder/default``, ``pretrain/default`` and ``trainer/default`` options of the config
groups are not files (``trainer/cpu``, ``gpu`` and ``ddp`` take ``default`` and change a few keys):
:func:`register` stores them in Hydra's ConfigStore, generated from their declarations in
:mod:`deepseg.options`. Nor are the deep methods' ``model/<method>`` options (``model/dec``):
they are generated from the estimators' own parameter declarations
(:mod:`deepseg.configs.methods`). Importing this package registers them; every command (and
:func:`deepseg.cli.common.config_dir`) imports it before composing a config.
"""

from __future__ import annotations

from deepseg.configs.methods import DEEP_METHODS, method_node
from deepseg.options import GROUPS

#: Where the generated options come from, as Hydra's ``provider`` of the stored configs.
PROVIDER = "deepseg.options"
METHODS_PROVIDER = "deepseg.configs.methods"


def register() -> None:
    """Store the ``default`` option of every declared group (:data:`deepseg.options.GROUPS`)
    in Hydra's ConfigStore: ``<group>/default``, the declared defaults in declaration order;
    and the option of every deep method in the ``model`` group (``model/dec``: its
    estimator's declared defaults, :func:`deepseg.configs.methods.method_node`)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group in GROUPS:
        store.store(group=group.name, name="default", node=group.defaults(), provider=PROVIDER)
    for name, target in DEEP_METHODS.items():
        store.store(group="model", name=name, node=method_node(target), provider=METHODS_PROVIDER)


register()
