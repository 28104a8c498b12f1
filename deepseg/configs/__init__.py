"""The Hydra configs of deepseg, shipped with the package (found as ``pkg://deepseg.configs``)."""
