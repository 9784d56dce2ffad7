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

"""Training: `TrainingConfig`, the training loop (one process or several
under torchrun), streaming of ``rb_triplets``, augmentation, calibration,
and `TrainRealBogusTask`, which writes ``rb_model``.

The private modules re-exported here hold the public names: ``_config``
(`TrainingConfig`), ``_train`` (`train`), ``_distributed``
(`DistributedContext`), ``_augmentation`` (`random_dihedral`),
``_calibration`` (`fit_temperature`, `calibrate`, `calibrated_scores`),
``_tripletData`` and ``_trainRealBogus``.  The others are the inside of
`train`: ``_trainer`` (the epoch loop), ``_batches`` (what each step trains
on), ``_optimization`` (loss, optimizer, schedule), ``_checkpoint`` and
``_packaging`` (metrics, threshold, provenance, the model package).
"""

from ._augmentation import *
from ._calibration import *
from ._config import *
from ._distributed import *
from ._train import *
from ._trainRealBogus import *
from ._tripletData import *
