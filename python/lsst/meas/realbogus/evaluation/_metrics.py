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

"""Classification metrics of a real/bogus classifier, in numpy only: the
namespace ``from lsst.meas.realbogus.evaluation import _metrics as metrics``
that gathers `._curves` (ROC and precision-recall curves, AUC, AP),
`._operatingPoints` (figures at a threshold, purity at completeness,
completeness at purity, OSS-REQ-0353), `._calibration` (reliability diagram,
ECE) and `._summary` (`summarize`, `positive_reweighting`).

Conventions shared by every function here:

- ``labels``: 1 (or `True`) is a real source, 0 (or `False`) a bogus one.
- ``scores``: higher means more likely real; the reliability scores of this
  package lie in [0, 1], which only the calibration functions require.
- A source is *kept* (classified real) at threshold ``t`` when
  ``score >= t``, as in scikit-learn.
- completeness = recall = kept reals / all reals;
  purity = precision = kept reals / all kept sources.
- ``sample_weight`` (optional, one non-negative finite weight per source)
  replaces every count by a sum of weights, e.g. to re-weight the classes to
  an on-sky mix with `positive_reweighting` (DMTN-272). As in scikit-learn,
  sources of zero weight are dropped before thresholds are formed, so they
  neither add a threshold nor move a curve.
- The candidate thresholds of the curves and operating points are the
  distinct scores: the classification only changes there, a threshold ``t``
  behaving like the lowest distinct score ``>= t``.
- A metric that is undefined for the input (e.g. ROC AUC with one class)
  is `nan`; invalid input (mismatched lengths, labels other than 0/1,
  non-finite scores or weights, empty input where a rate is asked for) raises
  `ValueError`.

The figures match `sklearn.metrics` (``roc_auc_score``,
``average_precision_score``, ``roc_curve`` with
``drop_intermediate=False``, ``precision_recall_curve`` without its final
``(1, 0)`` point, ``confusion_matrix``, ``accuracy_score``, ``f1_score``
with ``zero_division=np.nan``); the tests check this on random inputs. The
curves, ROC AUC and average precision sum in sklearn's order and agree with
it to the last bit.
"""

# One namespace of the metric modules (the tests and training import it as `metrics`).
from . import _bootstrap, _calibration, _curves, _operatingPoints, _summary
from ._bootstrap import *  # noqa: F403
from ._calibration import *  # noqa: F403
from ._curves import *  # noqa: F403
from ._operatingPoints import *  # noqa: F403
from ._summary import *  # noqa: F403

__all__ = [*_curves.__all__, *_operatingPoints.__all__, *_calibration.__all__, *_summary.__all__,
           *_bootstrap.__all__]
