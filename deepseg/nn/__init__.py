"""Pure torch modules: MLP encoder/decoder, autoencoder, input corruption, assignment heads."""

from deepseg.nn.modules import MLP, Autoencoder, StudentTAssignment, corrupt

__all__ = ["MLP", "Autoencoder", "StudentTAssignment", "corrupt"]
