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

"""Child process of test_hostileModelPackages: read every crafted package
under a memory limit and print one JSON line with the peak memory the reads
cost above the process's footprint after its imports.

Not a test module (pytest collects test_*.py only).
"""

import gc
import json
import resource

from test_hostileModelPackages import crafted_packages

from lsst.meas.realbogus.errors import ModelPackageError
from lsst.meas.realbogus.models import ModelPackage


def _status(key: str) -> int:
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


packages = crafted_packages()
gc.collect()
footprint = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# Private writable memory may grow by 1.5 GB at most: a regression that
# allocates what the archive claims dies here with MemoryError.
limit = _status("VmData") + 3 * 1024**3 // 2
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
refused = {}
for name, data in packages.items():
    try:
        ModelPackage.from_bytes(data, source=name).build_model()
    except ModelPackageError as err:
        refused[name] = str(err)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"cases": sorted(packages), "refused": sorted(refused), "footprintBytes": footprint,
                  "peakAboveFootprintBytes": peak - footprint, "messages": refused}))
