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

"""Evaluation: metrics at the natural class mix, scores joined to truth,
`EvaluateRealBogusTask` (``rb_metrics``, ``rb_plot_*``), plots, the
gallery of examples and the HTML report.

One evaluation path, `evaluate_detector_visits`, serves the task,
``rb-report --evaluate`` and ``python -m lsst.meas.realbogus.evaluation``;
one gallery (`._gallery`, `._galleryExamples`) serves ``rb-gallery`` and
``rb_plot_gallery``.
"""

from ._bootstrap import *
from ._calibration import *
from ._curves import *
from ._evaluateRealBogus import *
from ._evaluation import *
from ._gallery import *
from ._galleryExamples import *
from ._operatingPoints import *
from ._plots import *
from ._provenance import *
from ._report import *
from ._repository import *
from ._summary import *
