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

"""DC2-like repository simulator: GalSim scenes, templates, differences,
artifacts, detection and truth labels, written to a Butler repository
(``rb-simulate`` is its command-line front end).
"""

from ._artifacts import *
from ._config import *
from ._detection import *
from ._detectorVisit import *
from ._difference import *
from ._dimensionRecords import *
from ._imageFactory import *
from ._imageStorage import *
from ._injection import *
from ._instrument import *
from ._maskPlanes import *
from ._render import *
from ._repository import *
from ._scene import *
from ._simulateTask import *
from ._simulator import *
from ._skymap import *
from ._survey import *
from ._tanWcs import *
from ._truth import *
