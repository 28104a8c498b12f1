"""Pure torch modules: MLP encoder/decoder, autoencoder, input corruption, assignment heads."""

from deepseg.nn.heads import (
    ENCODERS,
    HEADS,
    AssignmentNet,
    GaussianMixtureHead,
    LinearProjection,
    MixturePosterior,
    NearestCenter,
    StudentTAssignment,
)
from deepseg.nn.modules import MLP, Autoencoder, corrupt, embed

__all__ = [
    "ENCODERS",
    "HEADS",
    "MLP",
    "AssignmentNet",
    "Autoencoder",
    "GaussianMixtureHead",
    "LinearProjection",
    "MixturePosterior",
    "NearestCenter",
    "StudentTAssignment",
    "corrupt",
    "embed",
]
