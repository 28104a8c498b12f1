"""Float tolerances from the arithmetic, not from a guess.

Two runs of the same float32 computation (another process, another thread count, another BLAS
kernel) sum in other orders. For a dot product of length ``n`` the two results differ by at most
about ``2 * n * u * sum_i |x_i w_i|`` (u = eps / 2, Higham, "Accuracy and Stability of Numerical
Algorithms", 3.1), so a bound must grow with the reduction length and the magnitude of the
values; a fixed 1e-6 fails as soon as a value is a few units large or a sum is long.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


def f32_tolerance(expected: np.ndarray, reduction: int, *, floor: float = 1.0) -> float:
    """The largest difference to accept between two float32 evaluations of ``expected``.

    ``n * eps * scale``, with ``scale`` the largest magnitude of ``expected`` but at least
    ``floor``: deepseg's inputs are standardised features of magnitude ~1, so the sums of
    ``|x_i w_i|`` behind even a near-zero value are of that order (cancellation makes a value
    small, not its rounding error). ``n * eps`` is twice Higham's ``n * u`` per summation order.

    Args:
        expected: the reference values.
        reduction: the total length of the sums behind one value (for an MLP: the input width
            plus every hidden width).
        floor: the smallest scale.
    """
    scale = max(float(np.max(np.abs(expected))) if np.size(expected) else 0.0, floor)
    return reduction * EPS32 * scale


def assert_f32_close(actual: np.ndarray, expected: np.ndarray, reduction: int) -> None:
    """``actual`` equals ``expected`` up to :func:`f32_tolerance`."""
    tol = f32_tolerance(np.asarray(expected), reduction)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol)
