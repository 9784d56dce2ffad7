# This file is part of meas_realbogus.
#
# Developed for the LSST Data Management System.
# This product includes software developed by the LSST Project
# (https://www.lsst.org).
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""Tests of the numpy-only classification metrics, against scikit-learn."""

import json
import math
import unittest

import numpy as np
import sklearn.calibration
import sklearn.metrics

import lsst.utils.tests
from lsst.meas.realbogus.evaluation import _metrics as metrics

N_SEEDS = 30


def random_cases():
    """Yield ``(name, labels, scores, weight)`` with both classes present.

    Per seed: continuous scores, scores rounded to 2 decimals (many ties),
    5 % reals, and each of those with random weights (some zero).
    """
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(seed)
        n = int(rng.choice([2, 7, 40, 300, 1500]))
        for fraction_real in (0.5, 0.05):
            labels = rng.random(n) < fraction_real
            # Both classes, so that every sklearn function is defined.
            labels[0], labels[-1] = True, False
            # Informative but overlapping scores.
            scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0.0, 1.0)
            for tied in (False, True):
                s = np.round(scores, 2) if tied else scores
                name = f"seed={seed} n={n} real={fraction_real} tied={tied}"
                yield name, labels.astype(int), s, None
                weight = rng.random(n) * 3
                weight[rng.random(n) < 0.1] = 0.0
                weight[0] = weight[-1] = 1.0  # keep both classes weighted
                yield name + " weighted", labels.astype(int), s, weight


class AgreementWithSklearnTestCase(lsst.utils.tests.TestCase):
    """Every metric that sklearn also has gives sklearn's answer.

    The curves, AUC and AP sum in sklearn's order, so they agree exactly.
    """

    def test_roc_auc(self):
        for name, labels, scores, weight in random_cases():
            with self.subTest(name):
                expected = sklearn.metrics.roc_auc_score(labels, scores, sample_weight=weight)
                self.assertEqual(metrics.roc_auc(labels, scores, weight), expected)

    def test_roc_curve(self):
        for name, labels, scores, weight in random_cases():
            with self.subTest(name):
                expected = sklearn.metrics.roc_curve(labels, scores, sample_weight=weight,
                                                     drop_intermediate=False)
                for got, want in zip(metrics.roc_curve(labels, scores, weight), expected):
                    np.testing.assert_array_equal(got, want)

    def test_precision_recall_curve(self):
        for name, labels, scores, weight in random_cases():
            with self.subTest(name):
                precision, recall, thresholds = sklearn.metrics.precision_recall_curve(
                    labels, scores, sample_weight=weight)
                # sklearn appends a threshold-less (precision 1, recall 0).
                self.assertEqual((precision[-1], recall[-1]), (1.0, 0.0))
                got = metrics.precision_recall_curve(labels, scores, weight)
                for g, want in zip(got, (precision[:-1], recall[:-1], thresholds)):
                    np.testing.assert_array_equal(g, want)
                # Thresholds are the distinct scores of weighted sources.
                kept = scores if weight is None else scores[weight != 0]
                np.testing.assert_array_equal(got[2], np.unique(kept))

    def test_average_precision(self):
        for name, labels, scores, weight in random_cases():
            with self.subTest(name):
                expected = sklearn.metrics.average_precision_score(labels, scores, sample_weight=weight)
                self.assertEqual(metrics.average_precision(labels, scores, weight), expected)

    def test_confusion_matrix_accuracy_f1(self):
        for name, labels, scores, weight in random_cases():
            rng = np.random.default_rng(len(name))
            # 0.5, a score value itself (kept: score >= threshold), and
            # thresholds that keep everything or nothing.
            for threshold in (0.5, float(rng.choice(scores)), -1.0, 2.0):
                with self.subTest(name, threshold=threshold):
                    predicted = (scores >= threshold).astype(int)
                    expected = sklearn.metrics.confusion_matrix(labels, predicted, labels=[0, 1],
                                                                sample_weight=weight)
                    got = metrics.confusion_matrix(labels, scores, threshold, weight)
                    self.assertEqual(got.shape, (2, 2))
                    np.testing.assert_allclose(got, expected, rtol=1e-12)
                    if weight is None:
                        self.assertEqual(got.dtype, np.int64)
                    summary = metrics.threshold_summary(labels, scores, threshold, weight)
                    self.assertFloatsAlmostEqual(
                        summary["accuracy"],
                        sklearn.metrics.accuracy_score(labels, predicted, sample_weight=weight),
                        rtol=1e-12)
                    for key, function in (("f1", sklearn.metrics.f1_score),
                                          ("purity", sklearn.metrics.precision_score),
                                          ("completeness", sklearn.metrics.recall_score)):
                        want = function(labels, predicted, sample_weight=weight, zero_division=np.nan)
                        np.testing.assert_allclose(summary[key], want, rtol=1e-12, err_msg=key)
                    (tn, fp), (fn, tp) = got
                    self.assertEqual((summary["tn"], summary["fp"], summary["fn"], summary["tp"]),
                                     (tn, fp, fn, tp))

    def test_operating_points_match_the_curve(self):
        # The recipe of benchmarks/catalog_classifier.py on sklearn's curve.
        for name, labels, scores, weight in random_cases():
            with self.subTest(name):
                precision, recall, _ = sklearn.metrics.precision_recall_curve(
                    labels, scores, sample_weight=weight)
                precision, recall = precision[:-1], recall[:-1]
                purity, _ = metrics.purity_at_completeness(labels, scores, 0.9, weight)
                self.assertFloatsAlmostEqual(purity, precision[recall >= 0.9].max(), rtol=1e-12)
                completeness, _ = metrics.completeness_at_purity(labels, scores, 0.6, weight)
                pure = precision >= 0.6
                self.assertFloatsAlmostEqual(completeness, recall[pure].max() if pure.any() else 0.0,
                                             rtol=1e-12)
                passing = metrics.requirement_thresholds(labels, scores, 0.5, 0.6, weight)
                self.assertEqual(passing.size, np.count_nonzero((recall >= 0.5) & pure))

    def test_integer_weights_repeat_sources(self):
        # Weight k is k copies of the source: a check independent of sklearn.
        rng = np.random.default_rng(7)
        labels = (rng.random(200) < 0.3).astype(int)
        scores = np.round(rng.random(200), 2)
        weight = rng.integers(0, 4, 200)
        copies = np.repeat(np.arange(200), weight)
        for function in (metrics.roc_auc, metrics.average_precision):
            self.assertFloatsAlmostEqual(function(labels, scores, weight),
                                         function(labels[copies], scores[copies]), rtol=1e-12)
        self.assertFloatsAlmostEqual(
            metrics.expected_calibration_error(labels, scores, 15, weight),
            metrics.expected_calibration_error(labels[copies], scores[copies], 15), rtol=1e-12)
        np.testing.assert_array_equal(metrics.confusion_matrix(labels, scores, 0.4, weight),
                                      metrics.confusion_matrix(labels[copies], scores[copies], 0.4))


class OperatingPointTestCase(lsst.utils.tests.TestCase):
    """Purity, completeness and the requirement on cases worked by hand."""

    def setUp(self):
        # From the top score down, thresholds keep:
        #   0.9: 1 bogus      purity 0    completeness 0
        #   0.8: + real       1/2         1/4
        #   0.7: + real       2/3         2/4
        #   0.6: + bogus      1/2         2/4
        #   0.5: + real       3/5         3/4
        #   0.4: + real       4/6         1
        self.scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
        self.labels = np.array([0, 1, 1, 0, 1, 1])

    def test_purity_at_completeness(self):
        pac = metrics.purity_at_completeness
        self.assertEqual(pac(self.labels, self.scores, 0.9), (4 / 6, 0.4))
        self.assertEqual(pac(self.labels, self.scores, 0.75), (4 / 6, 0.4))
        # Purity 2/3 at 0.7 and at 0.4: the lower threshold keeps more reals.
        self.assertEqual(pac(self.labels, self.scores, 0.5), (2 / 3, 0.4))
        self.assertEqual(pac(self.labels, self.scores, 0.25), (2 / 3, 0.4))
        self.assertEqual(pac(self.labels, self.scores, 0.0), (2 / 3, 0.4))
        self.assertEqual(pac(self.labels[:3], self.scores[:3], 0.5), (2 / 3, 0.7))
        self.assertEqual(pac(self.labels, self.scores, 1.0), (4 / 6, 0.4))

    def test_completeness_at_purity(self):
        cap = metrics.completeness_at_purity
        self.assertEqual(cap(self.labels, self.scores, 0.6), (1.0, 0.4))
        self.assertEqual(cap(self.labels, self.scores, 0.65), (1.0, 0.4))
        completeness, threshold = cap(self.labels, self.scores, 0.7)
        self.assertEqual(completeness, 0.0)
        self.assertTrue(math.isnan(threshold))
        # Completeness 2/4 at 0.7 (purity 2/3) and 0.6 (1/2): the higher one.
        self.assertEqual(cap(self.labels[:4], self.scores[:4], 0.5), (1.0, 0.7))
        self.assertEqual(cap(self.labels, self.scores, 0.5), (1.0, 0.4))
        self.assertEqual(cap([1, 1, 0, 1], [0.9, 0.8, 0.7, 0.6], 0.95), (2 / 3, 0.8))

    def test_requirement_not_contiguous(self):
        # Purity >= 0.6 at 0.7, 0.5, 0.4 but not at 0.6: a hole.
        passing = metrics.requirement_thresholds(self.labels, self.scores, 0.5, 0.6)
        np.testing.assert_array_equal(passing, [0.4, 0.5, 0.7])
        # Open below: the lowest score passes, so any lower threshold too.
        self.assertEqual(metrics.requirement_range(self.labels, self.scores, 0.5, 0.6), (-math.inf, 0.7))
        np.testing.assert_array_equal(metrics.requirement_thresholds(self.labels, self.scores, 0.5, 0.65),
                                      [0.4, 0.7])
        self.assertEqual(metrics.requirement_thresholds(self.labels, self.scores, 0.9, 0.7).size, 0)
        self.assertIsNone(metrics.requirement_range(self.labels, self.scores, 0.9, 0.7))

    def test_perfectly_separated_meets_requirement(self):
        rng = np.random.default_rng(3)
        bogus = rng.uniform(0.0, 0.4, 90)
        real = np.sort(rng.uniform(0.6, 1.0, 10))
        scores = np.r_[bogus, real]
        labels = np.r_[np.zeros(90, int), np.ones(10, int)]
        # Completeness >= 0.9 keeps at least 9 of the 10 reals.
        np.testing.assert_array_equal(metrics.requirement_thresholds(labels, scores), real[:2])
        lo, hi = metrics.requirement_range(labels, scores)
        self.assertEqual((lo, hi), (bogus.max(), real[1]))
        # The whole gap lies in the range, and every threshold in it passes.
        for threshold in np.linspace(bogus.max(), real.min(), 12)[1:]:
            summary = metrics.threshold_summary(labels, scores, threshold)
            self.assertEqual((summary["purity"], summary["completeness"]), (1.0, 1.0))
            self.assertTrue(lo < threshold <= hi)
        self.assertEqual(metrics.purity_at_completeness(labels, scores), (1.0, real[0]))
        self.assertEqual(metrics.completeness_at_purity(labels, scores), (1.0, real[0]))
        self.assertEqual(metrics.roc_auc(labels, scores), 1.0)
        self.assertFloatsAlmostEqual(metrics.average_precision(labels, scores), 1.0, rtol=1e-12)
        summary = metrics.summarize(labels, scores)
        self.assertTrue(summary["meets_requirement"])
        self.assertTrue(summary["threshold_meets_requirement"])
        self.assertEqual(summary["requirement_range"], [bogus.max(), real[1]])
        # Re-weighted to 20 bogus : 1 real the separation still holds.
        weight = metrics.positive_reweighting(labels, 20.0)
        self.assertEqual(metrics.requirement_range(labels, scores, sample_weight=weight), (lo, hi))

    def test_random_scores_fail_requirement(self):
        for seed in range(5):
            rng = np.random.default_rng(seed)
            labels = (rng.random(2000) < 0.05).astype(int)
            scores = rng.random(2000)
            self.assertEqual(metrics.requirement_thresholds(labels, scores).size, 0)
            self.assertIsNone(metrics.requirement_range(labels, scores))
            purity, _ = metrics.purity_at_completeness(labels, scores)
            self.assertLess(purity, 0.2)
            summary = metrics.summarize(labels, scores)
            self.assertFalse(summary["meets_requirement"])
            self.assertIsNone(summary["requirement_range"])
            self.assertLess(abs(summary["roc_auc"] - 0.5), 0.1)

    def test_zero_weight_sources_add_no_threshold(self):
        labels = np.array([1, 0, 1, 0])
        scores = np.array([0.9, 0.8, 0.7, 0.1])
        weight = np.array([1.0, 0.0, 1.0, 1.0])
        np.testing.assert_array_equal(metrics.precision_recall_curve(labels, scores, weight)[2],
                                      [0.1, 0.7, 0.9])
        self.assertEqual(metrics.requirement_range(labels, scores, sample_weight=weight), (0.1, 0.7))


class UndefinedTestCase(lsst.utils.tests.TestCase):
    """Metrics that one class leaves undefined are nan, not errors."""

    def test_one_class(self):
        scores = np.array([0.2, 0.4, 0.9])
        for labels in ([1, 1, 1], [0, 0, 0]):
            self.assertTrue(math.isnan(metrics.roc_auc(labels, scores)))
        self.assertTrue(math.isnan(metrics.average_precision([0, 0, 0], scores)))
        self.assertEqual(metrics.average_precision([1, 1, 1], scores), 1.0)
        fpr, tpr, _ = metrics.roc_curve([1, 1, 1], scores)
        self.assertTrue(np.isnan(fpr).all())
        np.testing.assert_array_equal(tpr, [0, 1 / 3, 2 / 3, 1])
        _, recall, _ = metrics.precision_recall_curve([0, 0, 0], scores)
        self.assertTrue(np.isnan(recall).all())
        for result in (metrics.purity_at_completeness([0, 0, 0], scores),
                       metrics.completeness_at_purity([0, 0, 0], scores)):
            self.assertTrue(np.isnan(result).all())
        self.assertEqual(metrics.requirement_thresholds([0, 0, 0], scores).size, 0)
        # Zero total weight of a class is as good as absent.
        self.assertTrue(math.isnan(metrics.roc_auc([1, 0, 0], scores, [0.0, 1.0, 1.0])))
        summary = metrics.threshold_summary([0, 0, 0], scores, 0.95)
        self.assertTrue(math.isnan(summary["purity"]))
        self.assertTrue(math.isnan(summary["completeness"]))
        self.assertTrue(math.isnan(summary["f1"]))
        self.assertEqual(summary["accuracy"], 1.0)
        summary = metrics.summarize([0, 0, 0], scores)
        self.assertIsNone(summary["roc_auc"])
        json.dumps(summary, allow_nan=False)

    def test_empty(self):
        np.testing.assert_array_equal(metrics.confusion_matrix([], []), [[0, 0], [0, 0]])
        diagram = metrics.reliability_diagram([], [], n_bins=4)
        np.testing.assert_array_equal(diagram["counts"], [0, 0, 0, 0])
        self.assertTrue(np.isnan(diagram["mean_score"]).all())


class CalibrationTestCase(lsst.utils.tests.TestCase):

    def test_calibrated_and_miscalibrated(self):
        rng = np.random.default_rng(11)
        scores = rng.random(200_000)
        calibrated = rng.random(scores.size) < scores
        self.assertLess(metrics.expected_calibration_error(calibrated, scores), 0.02)
        # Overconfident: P(real | s) = s**3, so the ECE is about 1/4.
        overconfident = rng.random(scores.size) < scores**3
        ece = metrics.expected_calibration_error(overconfident, scores)
        self.assertGreater(ece, 0.1)
        self.assertFloatsAlmostEqual(ece, 0.25, atol=0.01)

    def test_reliability_diagram(self):
        rng = np.random.default_rng(5)
        scores = rng.random(5000)
        labels = rng.random(5000) < scores
        diagram = metrics.reliability_diagram(labels, scores, n_bins=10)
        np.testing.assert_allclose(diagram["bin_edges"], np.linspace(0, 1, 11))
        self.assertEqual(diagram["counts"].sum(), 5000)
        # The bins of sklearn's uniform calibration_curve (no edge hit).
        prob_true, prob_pred = sklearn.calibration.calibration_curve(labels.astype(int), scores, n_bins=10)
        np.testing.assert_allclose(diagram["fraction_real"], prob_true, rtol=1e-12)
        np.testing.assert_allclose(diagram["mean_score"], prob_pred, rtol=1e-12)
        # ECE is the count-weighted mean gap of the diagram.
        expected = np.sum(diagram["counts"] * np.abs(prob_true - prob_pred)) / 5000
        self.assertFloatsAlmostEqual(metrics.expected_calibration_error(labels, scores, 10), expected,
                                     rtol=1e-12)

    def test_bin_edges_and_empty_bins(self):
        diagram = metrics.reliability_diagram([0, 1, 1, 0], [0.0, 1.0, 0.5, 0.25], n_bins=4)
        # [0, .25), [.25, .5), [.5, .75), [.75, 1]: score 1 in the last bin.
        np.testing.assert_array_equal(diagram["counts"], [1, 1, 1, 1])
        np.testing.assert_array_equal(diagram["fraction_real"], [0, 0, 1, 1])
        diagram = metrics.reliability_diagram([1, 1], [0.95, 0.05], n_bins=3)
        np.testing.assert_array_equal(diagram["counts"], [1, 0, 1])
        self.assertTrue(np.isnan(diagram["mean_score"][1]))
        self.assertFloatsAlmostEqual(metrics.expected_calibration_error([1, 1], [0.95, 0.05], 3),
                                     (0.05 + 0.95) / 2, rtol=1e-12)


class ReweightingAndSummaryTestCase(lsst.utils.tests.TestCase):

    def test_positive_reweighting(self):
        labels = np.r_[np.ones(30, int), np.zeros(120, int)]
        weight = metrics.positive_reweighting(labels, 20.0)
        np.testing.assert_array_equal(weight[labels == 0], 1.0)
        self.assertFloatsAlmostEqual(weight[labels == 0].sum() / weight[labels == 1].sum(), 20.0,
                                     rtol=1e-12)
        weight = metrics.positive_reweighting(labels.astype(bool), 0.5)
        self.assertFloatsAlmostEqual(weight[labels == 0].sum() / weight[labels == 1].sum(), 0.5,
                                     rtol=1e-12)
        # Re-weighting moves purity (it depends on the mix), not completeness.
        rng = np.random.default_rng(2)
        scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.2), 0, 1)
        plain = metrics.threshold_summary(labels, scores, 0.5)
        reweighted = metrics.threshold_summary(labels, scores, 0.5, metrics.positive_reweighting(labels))
        self.assertFloatsAlmostEqual(plain["completeness"], reweighted["completeness"], rtol=1e-12)
        self.assertLess(reweighted["purity"], plain["purity"])

    def test_summarize(self):
        rng = np.random.default_rng(4)
        labels = (rng.random(1000) < 0.3).astype(int)
        scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
        for weight in (None, metrics.positive_reweighting(labels)):
            summary = metrics.summarize(labels, scores, 0.5, weight)
            json.dumps(summary, allow_nan=False)
            self.assertEqual(summary["n"], 1000)
            self.assertEqual(summary["n_real"] + summary["n_bogus"], 1000)
            self.assertEqual(summary["n_real"], labels.sum())
            self.assertEqual(summary["roc_auc"], metrics.roc_auc(labels, scores, weight))
            self.assertEqual(summary["average_precision"], metrics.average_precision(labels, scores, weight))
            self.assertEqual((summary["purity_at_completeness_0.90"],
                              summary["purity_at_completeness_0.90_threshold"]),
                             metrics.purity_at_completeness(labels, scores, 0.9, weight))
            self.assertEqual((summary["completeness_at_purity_0.95"],
                              summary["completeness_at_purity_0.95_threshold"]),
                             metrics.completeness_at_purity(labels, scores, 0.95, weight))
            self.assertEqual(summary["ece"], metrics.expected_calibration_error(labels, scores, 15, weight))
            at = metrics.threshold_summary(labels, scores, 0.5, weight)
            for key in ("threshold", "tp", "fp", "tn", "fn", "accuracy", "f1", "purity", "completeness"):
                self.assertEqual(summary[key], at[key], key)
            self.assertEqual(summary["meets_requirement"], summary["requirement_range"] is not None)
            for value in summary.values():
                self.assertIn(type(value), (int, float, bool, list, type(None)))
        self.assertIsInstance(metrics.summarize(labels, scores)["tp"], int)


class BadInputTestCase(lsst.utils.tests.TestCase):

    def test_errors(self):
        good_labels, good_scores = [0, 1, 1], [0.1, 0.5, 0.9]
        cases = [
            ("one length", metrics.roc_auc, ([0, 1], good_scores)),
            ("0 \\(bogus\\) or 1 \\(real\\)", metrics.roc_auc, ([0, 2, 1], good_scores)),
            ("0 \\(bogus\\) or 1 \\(real\\)", metrics.average_precision, ([0, np.nan, 1], good_scores)),
            ("0 \\(bogus\\) or 1 \\(real\\)", metrics.roc_curve, (["a", "b", "c"], good_scores)),
            ("finite", metrics.precision_recall_curve, (good_labels, [0.1, np.nan, 0.9])),
            ("finite", metrics.roc_auc, (good_labels, [0.1, np.inf, 0.9])),
            ("empty", metrics.roc_auc, ([], [])),
            ("empty", metrics.threshold_summary, ([], [], 0.5)),
            ("empty", metrics.expected_calibration_error, ([], [])),
            ("empty", metrics.summarize, ([], [])),
            ("1-d", metrics.roc_auc, ([[0, 1]], [[0.1, 0.2]])),
            ("sample_weight must have shape", metrics.roc_auc, (good_labels, good_scores, [1.0, 1.0])),
            ("non-negative", metrics.average_precision, (good_labels, good_scores, [1.0, -1.0, 1.0])),
            ("non-negative", metrics.confusion_matrix, (good_labels, good_scores, 0.5, [1.0, np.nan, 1.0])),
            ("threshold must not be nan", metrics.confusion_matrix, (good_labels, good_scores, np.nan)),
            ("completeness must lie in", metrics.purity_at_completeness, (good_labels, good_scores, 1.5)),
            ("purity must lie in", metrics.completeness_at_purity, (good_labels, good_scores, -0.1)),
            ("min_purity must lie in", metrics.requirement_thresholds, (good_labels, good_scores, 0.9, 2.0)),
            ("in \\[0, 1\\]", metrics.expected_calibration_error, (good_labels, [0.1, 0.5, 1.2])),
            ("in \\[0, 1\\]", metrics.reliability_diagram, (good_labels, [-0.1, 0.5, 0.9])),
            ("n_bins", metrics.expected_calibration_error, (good_labels, good_scores, 0)),
            ("n_bins", metrics.reliability_diagram, (good_labels, good_scores, 2.5)),
            ("ratio", metrics.positive_reweighting, (good_labels, 0.0)),
            ("reals and bogus", metrics.positive_reweighting, ([1, 1],)),
            ("scores must be numbers", metrics.roc_auc, (good_labels, ["a", "b", "c"])),
        ]
        for pattern, function, args in cases:
            with self.subTest(function=function.__name__, pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern) as context:
                    function(*args)
                self.assertNotIn("\n", str(context.exception))

    def test_label_types(self):
        scores = [0.1, 0.5, 0.9, 0.3]
        expected = metrics.roc_auc([0, 1, 1, 0], scores)
        for labels in ([False, True, True, False], [0.0, 1.0, 1.0, 0.0], np.array([0, 1, 1, 0], np.uint8)):
            self.assertEqual(metrics.roc_auc(labels, scores), expected)


class BootstrapTestCase(lsst.utils.tests.TestCase):
    """Bootstrap intervals of the requirement figures."""

    @staticmethod
    def sample(n, seed=0):
        rng = np.random.default_rng(seed)
        labels = rng.random(n) < 0.08
        scores = np.clip(np.where(labels, rng.normal(0.8, 0.15, n), rng.normal(0.2, 0.15, n)), 0, 1)
        return labels, scores

    def test_intervals_cover_the_estimate_and_shrink(self):
        widths = []
        for n in (1000, 16000):
            labels, scores = self.sample(n)
            result = metrics.bootstrap_requirement(labels, scores, resamples=300)
            summary = metrics.summarize(labels, scores)
            for key in ("purity_at_completeness_0.90", "completeness_at_purity_0.95"):
                lo, hi = result[key]
                self.assertLessEqual(lo, summary[key])
                self.assertGreaterEqual(hi, summary[key])
            lo, hi = result["purity_at_completeness_0.90"]
            widths.append(hi - lo)
            self.assertEqual(result["resamples"], 300)
            self.assertTrue(0.0 <= result["fraction_meeting_requirement"] <= 1.0)
        # 16x the sources: about a quarter of the width.
        self.assertLess(widths[1], 0.45 * widths[0])

    def test_reproducible_and_seeded(self):
        labels, scores = self.sample(2000)
        a = metrics.bootstrap_requirement(labels, scores, resamples=100, seed=3)
        self.assertEqual(a, metrics.bootstrap_requirement(labels, scores, resamples=100, seed=3))
        self.assertNotEqual(a, metrics.bootstrap_requirement(labels, scores, resamples=100, seed=4))

    def test_perfect_classifier_meets_in_every_resample(self):
        labels = np.array([0] * 500 + [1] * 50)
        scores = labels * 0.9 + 0.05
        result = metrics.bootstrap_requirement(labels, scores, resamples=200)
        self.assertEqual(result["fraction_meeting_requirement"], 1.0)
        self.assertEqual(result["purity_at_completeness_0.90"], [1.0, 1.0])


class MemoryTester(lsst.utils.tests.MemoryTestCase):
    pass


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
