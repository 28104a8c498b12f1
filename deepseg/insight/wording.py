"""Numbers as people write them, shared by the profiles and the report."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["human", "human_pair"]


def human(value: Any, share: bool = False) -> str:
    """A number as people write it: 3,880; 12.5% (``share``); 0.101; 2.35; '' for NaN.

    >>> human(3880.0), human(0.125, share=True), human(12.345), human(0.1014), human(float("nan"))
    ('3,880', '12.5%', '12.3', '0.101', '')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return ""
    if share:
        return f"{v:.1%}"
    if v == round(v) and abs(v) < 1e15:
        return f"{round(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:,.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def human_pair(a: float, b: float, share: bool = False) -> tuple[str, str]:
    """Two numbers to compare, rounded alike: the same decimals for both.

    >>> human_pair(4.5, 2.0), human_pair(1452.0, 980.25), human_pair(0.25, 0.1, share=True)
    (('4.50', '2.00'), ('1,452', '980'), ('25.0%', '10.0%'))
    >>> human_pair(16.0, 50.0)
    ('16', '50')
    """
    if share:
        return human(a, share=True), human(b, share=True)
    if not (np.isfinite(a) and np.isfinite(b)):
        return human(a), human(b)
    if a == round(a) and b == round(b):
        return f"{round(a):,}", f"{round(b):,}"
    top = max(abs(a), abs(b))
    decimals = 0 if top >= 100 else 1 if top >= 10 else 2 if top >= 1 else 3
    return f"{a:,.{decimals}f}", f"{b:,.{decimals}f}"
