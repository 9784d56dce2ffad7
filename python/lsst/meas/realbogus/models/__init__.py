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

"""Model zoo of real/bogus classifiers of difference-image cutout triplets.

Every architecture takes float32 triplets of shape ``(N, 3, S, S)``
(template, science, difference) and returns logits of shape ``(N,)``; see
`RealBogusModel`. Architectures are registered in `modelRegistry`, so a
task config selects and configures one with a registry field::

    class MyConfig(lsst.pex.config.Config):
        model = modelRegistry.makeField(doc="Network.", default="rbcnn")

    config.model.name = "vgg6"
    config.model["vgg6"].denseDropout = 0.3
    network = config.model.apply(63)  # Vgg6(63, config=config.model.active)

The ``rb-models`` command (`lsst.meas.realbogus.cli.models`) prints the
size range and parameter count of each architecture.

This package also holds the model package (``rb_model``: weights and
metadata, with its storage class and Butler formatter) and the choice of
torch device and threads.
"""

from ._base import *
from ._butler import *
from ._describe import *
from ._devices import *
from ._limits import *
from ._modelPackage import *
from ._rbcnn import *
from ._rbtn import *
from ._registry import *
from ._resnet50 import *
from ._storageClass import *
from ._vgg6 import *
