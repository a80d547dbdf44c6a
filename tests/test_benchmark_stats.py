"""``benchmarks/stats.percentile``, the one p50/p95 of every benchmark script: it is numpy's default definition.

Checked against numpy itself on generated samples (hypothesis), so a benchmark's p95 can be recomputed from its
raw latencies with ``np.percentile`` and give the same number.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stats import percentile

latencies = st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=400)


@settings(max_examples=300, deadline=None)
@given(values=latencies, q=st.floats(min_value=0, max_value=100))
def test_percentile_is_numpys_linear_interpolation(values: list[float], q: float):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(values=latencies)
def test_p50_is_the_median_and_p95_the_inclusive_quantile(values: list[float]):
    assert percentile(values, 50) == pytest.approx(statistics.median(values), rel=1e-12, abs=1e-9)
    if len(values) >= 2:
        inclusive = statistics.quantiles(values, n=20, method="inclusive")[18]
        assert percentile(values, 95) == pytest.approx(inclusive, rel=1e-12, abs=1e-9)


def test_the_p95_of_twenty_values_lies_between_the_two_highest():
    """(20 - 1) * 0.95 = 18.05: 5 % of the way from the 19th value to the 20th, not the 19th (the lower rank)."""
    values = [float(v) for v in range(1, 20)] + [1001.0]
    assert percentile(reversed(values), 95) == pytest.approx(19 + 0.05 * (1001 - 19))


def test_no_values_or_a_q_outside_0_to_100_is_refused():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 95)
    with pytest.raises(ValueError, match="within 0 and 100"):
        percentile([1.0], 95.5 * 2)
