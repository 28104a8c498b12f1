"""The Hydra configs of deepseg, shipped with the package (found as ``pkg://deepseg.configs``).

The ``autoencoder/default``, ``pretrain/default`` and ``trainer/default`` options of the config
groups are not files (``trainer/cpu``, ``gpu`` and ``ddp`` take ``default`` and change a few keys):
:func:`register` stores them in Hydra's ConfigStore, generated from their declarations in
:mod:`deepseg.options`. Importing this package registers them; every command (and
:func:`deepseg.cli.common.config_dir`) imports it before composing a config.
"""

from __future__ import annotations

from deepseg.options import GROUPS

#: Where the generated options come from, as Hydra's ``provider`` of the stored configs.
PROVIDER = "deepseg.options"


def register() -> None:
    """Store the ``default`` option of every declared group (:data:`deepseg.options.GROUPS`)
    in Hydra's ConfigStore: ``<group>/default``, the declared defaults in declaration order."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group in GROUPS:
        store.store(group=group.name, name="default", node=group.defaults(), provider=PROVIDER)


register()
