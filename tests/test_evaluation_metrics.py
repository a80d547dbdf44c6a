"""Confidence metrics of bot.evaluation (AUROC, ECE) on small cases whose values are known by hand."""

import math

import numpy as np
import pytest

from bot.evaluation import auroc, expected_calibration_error


def test_auroc_ranks_right_above_wrong():
    assert auroc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0])) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5  # a tie counts half
    assert auroc(np.array([0.9, 0.2, 0.6]), np.array([1, 1, 0])) == pytest.approx(0.5)
    assert math.isnan(auroc(np.array([0.9]), np.array([1])))


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not():
    scores = np.array([0.75] * 4 + [0.25] * 4)
    labels = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    assert expected_calibration_error(scores, labels) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.95] * 10), np.zeros(10)) == pytest.approx(0.95)
    assert expected_calibration_error(np.array([0.9, 0.1]), np.array([1, 1])) == pytest.approx((0.1 + 0.9) / 2)
