"""LightningModules of deepseg: one training skeleton for every deep clustering method."""
