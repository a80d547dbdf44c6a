"""The one percentile the benchmarks report (p50, p95 of latencies), so every script's p95 means the same thing.

Scripts import it as ``from stats import percentile``: they run as ``python benchmarks/<script>.py``, which puts
this folder first on ``sys.path``. Plain Python, no numpy: a few benchmarks measure their own peak memory or run
children that should not load more than they measure.
"""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between the closest ranks: numpy's default
    (``np.percentile(values, q)``, method "linear"), the same as ``statistics.quantiles(method="inclusive")``.

    The value at rank ``(n - 1) * q / 100`` of the sorted values, interpolated between its two neighbours, so
    ``percentile(v, 50)`` is ``statistics.median(v)``. Two other definitions were in use before: the lower rank
    (``sorted(v)[int(0.95 * (n - 1))]``, up to one rank below this) and ``statistics.quantiles(v, n=20)[18]``
    (method "exclusive": rank ``(n + 1) * 0.95 - 1``, 0.9 of a rank above this for p95). In a sparse tail one
    rank can be many milliseconds.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0 and 100, not {q}")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
