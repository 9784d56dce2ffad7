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

"""Tests for the Butler and lsst.images plumbing of the simulator."""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest
import unittest.mock

import numpy as np
from astropy.table import Table
from astropy.time import Time

from lsst.images import DifferenceImage, VisitImage
from lsst.meas.realbogus.errors import RepositoryExistsError
from lsst.meas.realbogus.simulation import (
    DATASET_TYPES,
    INSTRUMENT,
    MASK_PLANES,
    PHYSICAL_FILTERS,
    SKYMAP,
    TRACTS,
    DetectorVisitProduct,
    ImageFactory,
    TanWcs,
    create_repository,
    day_obs_from_time,
    read_mask_planes,
    register_dataset_types,
    register_instrument,
    register_visit,
    tract_region,
    write_detector_visit,
)

SHAPE = (64, 64)
DETECTORS = (94, 95)
RUN = "sim/test"
# Visit 1 at the centre of tract 3080, visit 2 at the centre of tract 4024.
VISITS = {1: (3080, "r", Time("2022-11-01T03:00:00", scale="tai")),
          2: (4024, "g", Time("2022-11-02T04:00:00", scale="tai"))}


class _SimulatedFailure(Exception):
    """Raised by a patched `Butler.put`."""


def _butler_executable() -> str:
    """Return the ``butler`` command of the running environment."""
    candidate = os.path.join(os.path.dirname(sys.executable), "butler")
    return candidate if os.path.exists(candidate) else shutil.which("butler")


def _detector_wcs(tract: int, index: int) -> TanWcs:
    """Return the WCS of a test detector near a tract centre."""
    ra, dec = TRACTS[tract]
    # Two side-by-side detectors with the boresight between them.
    crpix_x = (SHAPE[1] - 1) / 2 - (index - 0.5) * (SHAPE[1] + 4)
    return TanWcs.from_pointing(ra, dec, rotation_deg=20.0, crpix=(crpix_x, (SHAPE[0] - 1) / 2))


def _masks(rng: np.random.Generator, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: rng.uniform(size=SHAPE) < 0.05 for name in names}


def _product(visit: int, detector: int, seed: int = 1) -> DetectorVisitProduct:
    """Make a detector-visit of random arrays."""
    rng = np.random.default_rng(seed)
    tract, band, obs_time = VISITS[visit]
    n = 7
    sources = Table(
        {
            "diaSourceId": np.arange(n, dtype=np.int64),
            "x": rng.uniform(0, SHAPE[1], n),
            "y": rng.uniform(0, SHAPE[0], n),
            "psfFlux": rng.normal(1000.0, 100.0, n).astype(np.float32),
            "flag": rng.uniform(size=n) < 0.5,
        }
    )
    truth = Table({"diaSourceId": sources["diaSourceId"], "is_real": rng.uniform(size=n) < 0.3,
                   "kind": np.array(["sn", "dipole", "cr", "sn", "ghost", "cr", "sn"])})
    return DetectorVisitProduct(
        visit=visit,
        detector=detector,
        band=band,
        physical_filter=PHYSICAL_FILTERS[band],
        wcs=_detector_wcs(tract, DETECTORS.index(detector)),
        science_psf_sigma=1.7,
        template_psf_sigma=1.3,
        difference_psf_sigma=1.7,
        science_image=rng.normal(0.0, 50.0, SHAPE).astype(np.float32),
        science_variance=rng.uniform(2000.0, 3000.0, SHAPE).astype(np.float32),
        science_masks=_masks(rng, ("BAD", "SAT", "CR", "EDGE", "NO_DATA", "INTRP", "SUSPECT")),
        template_image=rng.normal(0.0, 20.0, SHAPE).astype(np.float32),
        template_variance=rng.uniform(300.0, 400.0, SHAPE).astype(np.float32),
        template_masks=_masks(rng, ("NO_DATA", "EDGE")),
        difference_image=rng.normal(0.0, 55.0, SHAPE).astype(np.float32),
        difference_variance=rng.uniform(2300.0, 3400.0, SHAPE).astype(np.float32),
        difference_masks=_masks(rng, ("DETECTED", "DETECTED_NEGATIVE", "STREAK", "SAT")),
        sources=sources,
        truth=truth,
        obs_time=obs_time,
        exposure_time_s=30.0,
    )


class TanWcsTestCase(unittest.TestCase):
    """Tests for the gnomonic WCS."""

    def test_matches_astropy_and_inverts(self):
        wcs = TanWcs.from_pointing(61.6575, -42.3967, rotation_deg=33.0, crpix=(10.0, -5.0))
        rng = np.random.default_rng(3)
        x, y = rng.uniform(-4000, 4000, 50), rng.uniform(-4000, 4000, 50)
        ra, dec = wcs.pixel_to_sky(x, y)
        ra_ref, dec_ref = wcs.to_fits_wcs().pixel_to_world_values(x, y)
        np.testing.assert_allclose(ra, ra_ref, atol=1e-10)
        np.testing.assert_allclose(dec, dec_ref, atol=1e-10)
        x2, y2 = wcs.sky_to_pixel(ra, dec)
        np.testing.assert_allclose(x2, x, atol=1e-6)
        np.testing.assert_allclose(y2, y, atol=1e-6)
        self.assertIsInstance(wcs.pixel_to_sky(0.0, 0.0)[0], float)
        self.assertEqual(pickle.loads(pickle.dumps(wcs)), wcs)

    def test_unknown_mask_plane(self):
        factory = _factory()
        with self.assertRaises(ValueError):
            factory.visit_image(np.zeros(SHAPE), np.ones(SHAPE), {"NOT_A_PLANE": np.zeros(SHAPE, bool)}, 1.5)


def _factory(**kwargs) -> ImageFactory:
    """Return the image factory of detector 94 in visit 1."""
    return ImageFactory(_detector_wcs(3080, 0), band="r", physical_filter="r_sim_1.4", visit=1, detector=94,
                        exposure_time_s=30.0, obs_time=VISITS[1][2], **kwargs)


class ImageFactoryTestCase(unittest.TestCase):
    """Tests for building lsst.images images of a detector-visit."""

    def test_visit_and_difference_images_share_metadata(self):
        rng = np.random.default_rng(5)
        image, variance = rng.normal(size=SHAPE), rng.uniform(1.0, 2.0, SHAPE)
        masks = {"SAT": rng.uniform(size=SHAPE) < 0.1}
        factory = _factory()
        science = factory.visit_image(image, variance, masks, 1.5)
        difference = factory.difference_image(image, variance, masks, 2.5)
        self.assertIsInstance(science, VisitImage)
        self.assertIsInstance(difference, DifferenceImage)
        for made in (science, difference):
            self.assertEqual(made.image.array.dtype, np.float32)
            np.testing.assert_array_equal(made.image.array, image.astype(np.float32))
            np.testing.assert_array_equal(made.variance.array, variance.astype(np.float32))
            np.testing.assert_array_equal(read_mask_planes(made.mask)["SAT"], masks["SAT"])
            self.assertEqual(made.obs_info, factory.obs_info())
            self.assertEqual(made.detector.name, "R22_S11")
            self.assertEqual(made.band, "r")
        self.assertEqual(science.psf.sigma, 1.5)
        self.assertEqual(difference.psf.sigma, 2.5)
        self.assertEqual(factory.obs_info().observation_id, "LSSTCam-imSim_1")
        self.assertEqual(pickle.loads(pickle.dumps(factory)), factory)

    def test_detector_shape(self):
        # An image may cover part of a larger detector, never more than it.
        factory = _factory(detector_shape=(SHAPE[0] + 10, SHAPE[1] + 20))
        image = factory.visit_image(np.zeros(SHAPE), np.ones(SHAPE), {}, 1.5)
        self.assertEqual(image.detector.bbox, factory.camera_detector(SHAPE).bbox)
        self.assertEqual(tuple(image.detector.bbox.shape), (SHAPE[0] + 10, SHAPE[1] + 20))
        self.assertEqual(tuple(image.image.bbox.shape), SHAPE)
        small = _factory(detector_shape=(SHAPE[0] - 1, SHAPE[1]))
        with self.assertRaises(ValueError):
            small.visit_image(np.zeros(SHAPE), np.ones(SHAPE), {}, 1.5)

    def test_bad_arrays(self):
        factory = _factory()
        with self.assertRaises(ValueError):
            factory.difference_image(np.zeros(SHAPE), np.ones((SHAPE[0], SHAPE[1] + 1)), {}, 1.5)
        with self.assertRaises(ValueError):
            factory.difference_image(np.zeros(SHAPE[0]), np.ones(SHAPE[0]), {}, 1.5)
        with self.assertRaises(ValueError):
            factory.visit_image(np.zeros(SHAPE), np.ones(SHAPE), {"SAT": np.zeros((2, 2), bool)}, 1.5)


class RepositoryTestCase(unittest.TestCase):
    """Create a small repository and read it back."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="rb_repo_test_")
        cls.root = os.path.join(cls.tmpdir, "repo")
        cls.butler = create_repository(cls.root)
        register_instrument(cls.butler, detector_ids=DETECTORS, detector_shape=SHAPE, bands=("g", "r"))
        register_dataset_types(cls.butler)
        for visit, (tract, band, obs_time) in VISITS.items():
            register_visit(
                cls.butler,
                visit=visit,
                band=band,
                physical_filter=PHYSICAL_FILTERS[band],
                day_obs=day_obs_from_time(obs_time),
                exposure_time_s=30.0,
                obs_begin=obs_time,
                boresight_ra=TRACTS[tract][0],
                boresight_dec=TRACTS[tract][1],
                rotation_deg=20.0,
                detector_regions={
                    det: _detector_wcs(tract, i).sky_polygon(SHAPE) for i, det in enumerate(DETECTORS)
                },
            )
        cls.product = _product(1, 94)
        cls.refs = write_detector_visit(cls.butler, RUN, cls.product)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def _files(self):
        return {f for _, _, names in os.walk(os.path.join(self.root, RUN)) for f in names}

    def _get(self, name, **kwargs):
        return self.butler.get(name, self.product.data_id, collections=RUN, **kwargs)

    def _check_image(self, image, cls, pixels, variance, masks, sigma):
        self.assertIsInstance(image, cls)
        np.testing.assert_array_equal(image.image.array, pixels)
        np.testing.assert_array_equal(image.variance.array, variance)
        planes = read_mask_planes(image.mask)
        self.assertEqual(set(planes), set(MASK_PLANES))
        for name, plane in planes.items():
            expected = masks.get(name, np.zeros(SHAPE, bool))
            np.testing.assert_array_equal(plane, expected, err_msg=name)
        self.assertEqual(str(image.unit), "nJy")
        self.assertEqual(image.band, self.product.band)
        self.assertEqual(image.physical_filter, self.product.physical_filter)
        self.assertEqual(image.detector.id, self.product.detector)
        self.assertEqual(image.detector.name, "R22_S11")
        self.assertEqual(image.psf.sigma, sigma)
        x = np.array([0.0, 10.5, 63.0, 31.0])
        y = np.array([0.0, 50.0, 63.0, 2.0])
        ra, dec = self.product.wcs.pixel_to_sky(x, y)
        sky = image.sky_projection.pixel_to_sky(x=x, y=y)
        np.testing.assert_allclose(sky.ra.deg, ra, atol=1e-6)
        np.testing.assert_allclose(sky.dec.deg, dec, atol=1e-6)

    def test_images_round_trip(self):
        p = self.product
        self._check_image(self._get("preliminary_visit_image"), VisitImage, p.science_image,
                          p.science_variance, p.science_masks, p.science_psf_sigma)
        self._check_image(self._get("template_detector"), DifferenceImage, p.template_image,
                          p.template_variance, p.template_masks, p.template_psf_sigma)
        self._check_image(self._get("difference_image"), DifferenceImage, p.difference_image,
                          p.difference_variance, p.difference_masks, p.difference_psf_sigma)
        science = self._get("preliminary_visit_image")
        self.assertEqual(science.obs_info.instrument, INSTRUMENT)
        self.assertEqual(science.obs_info.visit_id, 1)
        self.assertAlmostEqual(science.obs_info.exposure_time.to_value("s"), 30.0)

    def test_tables_round_trip(self):
        for name, expected in (("dia_source_unstandardized", self.product.sources),
                               ("dia_source_truth", self.product.truth)):
            table = self._get(name)
            self.assertEqual(table.colnames, expected.colnames)
            for column in expected.colnames:
                np.testing.assert_array_equal(np.asarray(table[column]), np.asarray(expected[column]))

    def test_product_pickles(self):
        clone = pickle.loads(pickle.dumps(self.product))
        np.testing.assert_array_equal(clone.science_image, self.product.science_image)
        self.assertEqual(clone.wcs, self.product.wcs)

    def test_dataset_types(self):
        for name, storage_class in DATASET_TYPES.items():
            dataset_type = self.butler.get_dataset_type(name)
            self.assertEqual(dataset_type.storageClass_name, storage_class)
            self.assertEqual(set(dataset_type.dimensions.required), {"instrument", "visit", "detector"})

    def test_spatial_query(self):
        for tract, visit in ((3080, 1), (4024, 2)):
            data_ids = set(
                self.butler.registry.queryDataIds(
                    ["visit", "detector"], where=f"skymap='{SKYMAP}' AND tract={tract}"
                )
            )
            self.assertEqual({(d["visit"], d["detector"]) for d in data_ids},
                             {(visit, det) for det in DETECTORS})
            visits = {d["visit"] for d in self.butler.query_data_ids(
                ["visit"], where=f"skymap='{SKYMAP}' AND tract={tract}")}
            self.assertEqual(visits, {visit})
            patches = {d["patch"] for d in self.butler.query_data_ids(
                ["patch"], where=f"skymap='{SKYMAP}' AND tract={tract} AND visit={visit}",
                instrument=INSTRUMENT)}
            self.assertEqual(patches, {24})  # the central patch of 7x7
        self.assertTrue(tract_region(3080).contains(
            _detector_wcs(3080, 0).sky_polygon(SHAPE).getVertices()[0]))

    def test_visit_records(self):
        tract, band, obs_time = VISITS[1]
        data_id = {"instrument": INSTRUMENT, "exposure": 1, "visit": 1}
        (exposure,) = self.butler.registry.queryDimensionRecords("exposure", dataId=data_id)
        (visit,) = self.butler.registry.queryDimensionRecords("visit", dataId=data_id)
        self.assertEqual(exposure.obs_id, f"{INSTRUMENT}_1")
        self.assertEqual(exposure.group, f"{INSTRUMENT}_1")
        self.assertEqual((exposure.tracking_ra, exposure.tracking_dec), TRACTS[tract])
        self.assertEqual(exposure.sky_angle, 20.0)
        for record in (exposure, visit):
            self.assertEqual(record.physical_filter, PHYSICAL_FILTERS[band])
            self.assertEqual(record.day_obs, day_obs_from_time(obs_time))
            self.assertEqual(record.exposure_time, 30.0)
            self.assertEqual(record.timespan.begin, obs_time.tai)
        for detector in DETECTORS:
            for vertex in _detector_wcs(tract, DETECTORS.index(detector)).sky_polygon(SHAPE).getVertices():
                self.assertTrue(visit.region.contains(vertex))

    def test_register_visit_checks(self):
        tract, band, obs_time = VISITS[1]
        good = dict(visit=3, band=band, physical_filter=PHYSICAL_FILTERS[band], exposure_time_s=30.0,
                    obs_begin=obs_time, boresight_ra=TRACTS[tract][0], boresight_dec=TRACTS[tract][1],
                    rotation_deg=0.0, detector_regions={94: _detector_wcs(tract, 0).sky_polygon(SHAPE)})
        for bad, fragment in (({"detector_regions": {}}, "no detector regions"),
                              ({"physical_filter": "g_sim_1.4"}, "not that of band"),
                              ({"day_obs": day_obs_from_time(obs_time) + 1}, "disagrees")):
            with self.assertRaisesRegex(ValueError, fragment):
                register_visit(self.butler, **{**good, **bad})
        self.assertEqual(
            list(self.butler.registry.queryDimensionRecords("visit", dataId={"instrument": INSTRUMENT},
                                                            where="visit = 3")), [])

    def test_cli(self):
        butler = _butler_executable()
        result = subprocess.run([butler, "query-datasets", self.root, "--collections", RUN],
                                capture_output=True, text=True, check=True)
        for name in DATASET_TYPES:
            self.assertIn(name, result.stdout)
        result = subprocess.run(
            [butler, "query-data-ids", self.root, "visit", "detector", "--where",
             f"skymap='{SKYMAP}' AND tract=3080"],
            capture_output=True, text=True, check=True,
        )
        rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
        header = rows[0]
        found = {(int(row[header.index("visit")]), int(row[header.index("detector")]))
                 for row in rows if row[0] == INSTRUMENT}
        self.assertEqual(found, {(1, det) for det in DETECTORS})

    def test_failed_write_leaves_nothing(self):
        product = _product(2, 95)
        dataset_ids = {"instrument": INSTRUMENT, "visit": 2, "detector": 95}
        real_put = type(self.butler).put
        calls = []
        files_before = self._files()

        def failing_put(butler, obj, dataset_type, *args, **kwargs):
            calls.append(dataset_type)
            if dataset_type == "dia_source_truth":
                raise _SimulatedFailure("simulated failure")
            return real_put(butler, obj, dataset_type, *args, **kwargs)

        with unittest.mock.patch.object(type(self.butler), "put", failing_put):
            with self.assertRaises(_SimulatedFailure):
                write_detector_visit(self.butler, RUN, product)
        self.assertEqual(len(calls), len(DATASET_TYPES))
        for name in DATASET_TYPES:
            self.assertEqual(self.butler.query_datasets(name, collections=RUN, data_id=dataset_ids,
                                                        explain=False), [])
        self.assertEqual(self._files(), files_before)
        # And the detector-visit can then be written for real.
        refs = write_detector_visit(self.butler, RUN, product)
        self.assertEqual(set(refs), set(DATASET_TYPES))
        self.butler.pruneDatasets(refs.values(), purge=True, unstore=True, disassociate=True)


class CreateRepositoryTestCase(unittest.TestCase):
    """Tests for the safety checks of `create_repository`."""

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="rb_create_test_")
        self.addCleanup(shutil.rmtree, self.tmpdir, ignore_errors=True)

    def test_non_empty_directory(self):
        root = os.path.join(self.tmpdir, "data")
        os.makedirs(root)
        keep = os.path.join(root, "precious.txt")
        with open(keep, "w") as stream:
            stream.write("keep me")
        with self.assertRaises(RepositoryExistsError) as cm:
            create_repository(root)
        self.assertNotIn("\n", str(cm.exception))
        with self.assertRaises(RepositoryExistsError):
            create_repository(root, overwrite=True)
        self.assertEqual(os.listdir(root), ["precious.txt"])

    def test_overwrite_repository(self):
        root = os.path.join(self.tmpdir, "repo")
        butler = create_repository(root)
        register_instrument(butler, detector_ids=[0], bands=["r"])
        with self.assertRaises(RepositoryExistsError):
            create_repository(root)
        butler = create_repository(root, overwrite=True)
        self.assertEqual(list(butler.registry.queryDimensionRecords("instrument")), [])
        # An empty directory is fine.
        empty = os.path.join(self.tmpdir, "empty")
        os.makedirs(empty)
        create_repository(empty)
        self.assertTrue(os.path.isfile(os.path.join(empty, "butler.yaml")))


if __name__ == "__main__":
    unittest.main()
