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

"""Tests of the simulator's physics, one detector-visit at a time."""

import math
import unittest

import galsim
import numpy as np
from astropy.table import Table

import lsst.utils.tests
from lsst.meas.realbogus.simulation import (
    BOGUS_CLASSES,
    REAL_CLASSES,
    ArtifactMap,
    DetectionConfig,
    Scene,
    StaticObjects,
    Transients,
    apply_saturation,
    detect_and_measure,
    detector_coverage,
    draw_psf_image,
    draw_scene,
    electrons_per_njy,
    inject_sources,
    label_detections,
    make_config,
    make_psf,
    matching_kernel,
    plan_survey,
    simulate_detector_visit,
    subtract,
    template_coverage,
)


def _small_config(seed=1):
    config = make_config("ci")
    config.seed = seed
    config.survey.visitsPerTract = 1
    return config


class PhotometryTestCase(lsst.utils.tests.TestCase):
    def test_zero_point(self):
        # r: 28.36 mag for 1 e-/s -> 32.05 mag for 1 e- in 30 s; nJy at m=31.4.
        e = electrons_per_njy(28.36, 30.0)
        self.assertAlmostEqual(e, 10 ** (-0.4 * (31.4 - 28.36 - 2.5 * math.log10(30.0))), places=12)
        self.assertAlmostEqual(-2.5 * math.log10(1.0 / e) + 31.4, 28.36 + 2.5 * math.log10(30), places=9)


class DifferenceTestCase(lsst.utils.tests.TestCase):
    def test_kernel_matches_gaussians(self):
        # Template (sigma 1.3 px) * kernel must reproduce the science PSF
        # (sigma 1.8 px) centred: an off-centre kernel makes every star a dipole.
        scale = 0.2
        size = 25
        sci = draw_psf_image(make_psf("gaussian", 1.8 * 2.3548 * scale), size, scale)
        tmp = draw_psf_image(make_psf("gaussian", 1.3 * 2.3548 * scale), size, scale)
        kernel = matching_kernel(sci, tmp)
        self.assertAlmostEqual(kernel.sum(), 1.0, places=10)
        yy, xx = np.mgrid[0:size, 0:size] - size // 2
        self.assertAlmostEqual(float((kernel * xx).sum()), 0.0, places=6)
        self.assertAlmostEqual(float((kernel * yy).sum()), 0.0, places=6)
        from scipy.signal import fftconvolve

        matched = fftconvolve(tmp, kernel, mode="same")
        self.assertLess(np.abs(matched - sci).max(), 1e-3 * sci.max())

    def test_subtract_no_data_and_edge(self):
        rng = np.random.default_rng(3)
        shape = (64, 64)
        sci = rng.normal(0, 1, shape)
        tmpl = rng.normal(0, 0.1, shape)
        tmpl[:, :10] = np.nan
        kernel = np.zeros((7, 7))
        kernel[3, 3] = 1.0
        result = subtract(sci, np.ones(shape), tmpl, np.full(shape, 0.01), kernel, edge_width=5)
        self.assertTrue(np.isnan(result.image[:, :10]).all())
        self.assertTrue(result.no_data[:, :10].all())
        self.assertTrue(np.isfinite(result.image[:, 14:]).all())
        self.assertTrue(result.edge[0].all() and result.edge[:, -1].all())
        self.assertFalse(result.edge[20:40, 20:40].any())
        np.testing.assert_allclose(result.image[:, 14:], (sci - tmpl)[:, 14:], atol=1e-5)


class DetectionTestCase(lsst.utils.tests.TestCase):
    def test_recovers_point_source(self):
        scale, fwhm = 0.2, 0.8
        sigma_px = fwhm / scale / 2.3548
        psf = make_psf("gaussian", fwhm)
        image = galsim.ImageF(galsim.BoundsI(0, 99, 0, 99), scale=scale)
        flux = 2000.0
        psf.withFlux(flux).drawImage(image, center=galsim.PositionD(40.3, 60.7))
        psf.withFlux(-1500.0).drawImage(image, center=galsim.PositionD(70.0, 20.0), add_to_image=True)
        noise = 2.0
        rng = np.random.default_rng(0)
        data = image.array + rng.normal(0, noise, image.array.shape)
        var = np.full(data.shape, noise**2)
        masks = {"EDGE": np.zeros(data.shape, bool)}
        psf_image = draw_psf_image(psf, 15, scale)
        table = detect_and_measure(data, var, masks, psf_image, sigma_px, DetectionConfig(), id_base=100)
        self.assertEqual(len(table), 2)
        self.assertEqual(list(table["id"]), [100, 101])
        neg, pos = table[0], table[1]  # sorted by y
        self.assertTrue(neg["is_negative"])
        self.assertFalse(pos["is_negative"])
        self.assertAlmostEqual(pos["slot_Centroid_x"], 40.3, delta=0.3)
        self.assertAlmostEqual(pos["slot_Centroid_y"], 60.7, delta=0.3)
        self.assertAlmostEqual(pos["base_PsfFlux_instFlux"] / flux, 1.0, delta=0.05)
        self.assertAlmostEqual(neg["base_PsfFlux_instFlux"] / -1500.0, 1.0, delta=0.05)
        expected_err = noise * math.sqrt(4 * math.pi * sigma_px**2)
        self.assertAlmostEqual(pos["base_PsfFlux_instFluxErr"] / expected_err, 1.0, delta=0.05)
        self.assertAlmostEqual(pos["slot_Shape_xx"], sigma_px**2 / 2, delta=0.5)

    def test_max_sources_keeps_most_significant(self):
        scale, fwhm = 0.2, 0.8
        psf = make_psf("gaussian", fwhm)
        image = galsim.ImageF(galsim.BoundsI(0, 99, 0, 99), scale=scale)
        psf.withFlux(1500.0).drawImage(image, center=galsim.PositionD(40.0, 20.0))
        psf.withFlux(-3000.0).drawImage(image, center=galsim.PositionD(70.0, 60.0), add_to_image=True)
        psf.withFlux(2000.0).drawImage(image, center=galsim.PositionD(20.0, 80.0), add_to_image=True)
        data = image.array + np.random.default_rng(1).normal(0, 2.0, image.array.shape)
        config = DetectionConfig()
        config.maxSources = 2
        table = detect_and_measure(data, np.full(data.shape, 4.0), {}, draw_psf_image(psf, 15, scale),
                                   fwhm / scale / 2.3548, config, id_base=0)
        # The two most significant of three, still in row order.
        self.assertEqual(len(table), 2)
        self.assertEqual(list(table["is_negative"]), [True, False])
        np.testing.assert_allclose(table["slot_Centroid_x"], [70.0, 20.0], atol=0.3)
        np.testing.assert_allclose(table["slot_Centroid_y"], [60.0, 80.0], atol=0.3)
        self.assertTrue(np.all(np.isnan(table["coord_ra"])))
        self.assertFalse(np.any(table["base_PixelFlags_flag_edge"]))

    def test_empty(self):
        data = np.zeros((50, 50))
        table = detect_and_measure(data, np.ones_like(data), {}, np.ones((5, 5)) / 25, 1.5, DetectionConfig(),
                                   id_base=0)
        self.assertEqual(len(table), 0)
        self.assertIn("base_PixelFlags_flag_edge", table.colnames)
        self.assertIn("base_PsfFlux_instFlux", table.colnames)


class LabelTestCase(lsst.utils.tests.TestCase):
    """Each rule of `label_detections` on a hand-made scene."""

    def test_rules(self):
        shape = (100, 100)
        static = StaticObjects(
            id=np.array([1, 2, 3, 4]),
            kind=np.zeros(4, int),
            x=np.array([30.0, 70.0, 30.0, 50.0]),
            y=np.array([30.0, 30.0, 70.0, 80.0]),
            template_flux=np.array([1e5, 1e5, 1e5, 1e4]),
            science_flux=np.array([1e5, 1e5, 1e5, 2e4]),  # 4 is a variable star
            sersic_n=np.zeros(4),
            half_light=np.zeros(4),
            q=np.ones(4),
            beta=np.zeros(4),
            offset_x=np.array([0.0, 0.3, 0.0, 0.0]),  # 2 is misregistered
            offset_y=np.zeros(4),
            injected=np.zeros(4, bool),
        )
        transients = Transients(id=np.array([5]), kind=np.array([0]), x=np.array([70.0]), y=np.array([70.0]),
                                flux=np.array([5000.0]), host=np.array([-1]), trail_x=np.zeros(1),
                                trail_y=np.zeros(1), injected=np.zeros(1, bool))
        amap = ArtifactMap(shape)
        amap.mark("cosmicRay", (np.array([10]), np.array([50])))
        edge = np.zeros(shape, bool)
        edge[:, :5] = True
        gap = np.zeros(shape, bool)
        gap[:, 85:90] = True
        expected = [
            ((70.2, 70.1, False), "snHosted"),
            ((70.2, 70.1, True), "noise"),  # a real change of the other sign
            ((50.4, 80.3, False), "variableStar"),
            ((50.5, 10.2, False), "cosmicRay"),
            ((2.0, 50.0, False), "edge"),
            ((87.0, 50.0, False), "templateGap"),
            ((31.0, 30.5, False), "psfResidual"),
            ((70.5, 30.0, True), "dipole"),
            ((30.0, 71.0, False), "saturated"),
            ((50.0, 50.0, False), "noise"),
        ]
        sources = Table({
            "id": np.arange(len(expected), dtype=np.int64),
            "slot_Centroid_x": [x for (x, _, _), _ in expected],
            "slot_Centroid_y": [y for (_, y, _), _ in expected],
            "base_PsfFlux_instFluxErr": np.full(len(expected), 100.0),
            "is_negative": [neg for (_, _, neg), _ in expected],
        })
        radius = np.arange(81)
        truth = label_detections(
            sources, Scene(static, transients, 1.0), amap, edge_mask=edge, gap_band=gap,
            saturated_ids=np.array([3]), fwhm_px=4.0,
            psf_profile=np.exp(-0.5 * radius**2 / 4.0) / (8 * np.pi), pixel_noise_e=10.0,
            match_radius=1.0, real_min_significance=2.0, e_per_njy=1.0, pixel_scale=0.2,
        )
        self.assertEqual(list(truth["truth_class"]), [label for _, label in expected])
        self.assertEqual(list(truth["is_real"]), [True, False, True] + [False] * 7)
        self.assertEqual(list(truth["truth_id"]), [5, -1, 4, -1, -1, -1, 1, 2, 3, -1])
        np.testing.assert_array_equal(truth["true_flux"][:3], [5000.0, np.nan, 1e4])
        self.assertAlmostEqual(truth["match_distance"][0], math.hypot(0.2, 0.1))
        self.assertAlmostEqual(truth["match_distance"][6], math.hypot(1.0, 0.5))
        self.assertTrue(np.isnan(truth["match_distance"][9]))
        self.assertFalse(truth["injected"].any())
        # The same scene with the supernova and the misregistered star
        # injected: what they cause, or their light reaches, is flagged.
        transients.injected[:] = True
        static.injected[1] = True
        amap.mark("cosmicRay", (np.array([90]), np.array([10])), injected=True)
        sources.add_row({"id": 10, "slot_Centroid_x": 10.2, "slot_Centroid_y": 90.1,
                         "base_PsfFlux_instFluxErr": 100.0, "is_negative": False})
        truth = label_detections(
            sources, Scene(static, transients, 1.0), amap, edge_mask=edge, gap_band=gap,
            saturated_ids=np.array([3]), fwhm_px=4.0,
            psf_profile=np.exp(-0.5 * radius**2 / 4.0) / (8 * np.pi), pixel_noise_e=10.0,
            match_radius=1.0, real_min_significance=2.0, e_per_njy=1.0, pixel_scale=0.2,
        )
        self.assertEqual(truth["truth_class"][10], "cosmicRay")
        self.assertEqual(list(np.flatnonzero(truth["injected"])), [0, 1, 7, 10])


class InjectionTestCase(lsst.utils.tests.TestCase):
    """Injected sources: counts, separation, flags, and a natural sky that
    injection leaves as it was.
    """

    @classmethod
    def setUpClass(cls):
        cls.config = make_config("train")
        cls.config.survey.visitsPerTract = 2
        cls.spec = next(s for s in plan_survey(cls.config) if detector_coverage(s).all())
        rng = np.random.default_rng(np.random.SeedSequence([1, 2]))
        cls.natural = draw_scene(rng, cls.config, band="r", width=cls.spec.width, height=cls.spec.height)
        cls.fwhm = 4.0
        cls.scene = inject_sources(np.random.default_rng(3), cls.config, cls.natural, band="r",
                                   width=cls.spec.width, height=cls.spec.height, fwhm_px=cls.fwhm)

    def test_natural_objects_unchanged_and_injected_flagged(self):
        n_static, n_tr = len(self.natural.static), len(self.natural.transients)
        for name in ("x", "y", "template_flux", "science_flux", "offset_x"):
            np.testing.assert_array_equal(getattr(self.scene.static, name)[:n_static],
                                          getattr(self.natural.static, name))
        self.assertFalse(self.scene.static.injected[:n_static].any())
        self.assertTrue(self.scene.static.injected[n_static:].all())
        self.assertTrue(self.scene.transients.injected[n_tr:].all())
        ids = np.concatenate([self.scene.static.id, self.scene.transients.id])
        self.assertEqual(len(np.unique(ids)), len(ids))

    def test_counts_and_kinds(self):
        inj = self.config.injection
        megapixels = self.spec.width * self.spec.height / 1e6
        tr = self.scene.transients
        kinds = np.bincount(tr.kind[tr.injected], minlength=3)
        for kind, rate in ((1, inj.hostlessPerMegapixel), (2, inj.moversPerMegapixel)):
            expected = rate * megapixels
            self.assertLess(abs(kinds[kind] - expected), 4 * np.sqrt(expected) + 2)
        self.assertGreater(kinds[0], 0)  # hosted, limited by the hosts available
        st = self.scene.static
        variables = st.injected & st.is_variable
        self.assertGreater(variables.sum(), 0.5 * inj.variablesPerMegapixel * megapixels)
        mags = 31.4 - 2.5 * np.log10(np.abs(st.science_flux - st.template_flux)[variables]
                                     / self.natural.zero_point_e)
        self.assertTrue(((mags >= inj.magBright - 1e-9) & (mags <= inj.magFaint + 1e-9)).all())
        # Hosted supernovae sit on distinct natural galaxies.
        hosts = tr.host[tr.injected & (tr.kind == 0)]
        self.assertEqual(len(np.unique(hosts)), len(hosts))

    def test_never_overlapping(self):
        st, tr = self.scene.static, self.scene.transients
        changes = np.concatenate([
            np.column_stack([tr.x + 0.5 * tr.trail_x, tr.y + 0.5 * tr.trail_y]),
            np.column_stack([st.x, st.y])[st.injected],
        ])
        d = np.hypot(*(changes[:, None, :] - changes[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        self.assertGreaterEqual(d.min(), self.config.injection.minSeparation * self.fwhm - 1e-9)

    def test_detections_of_a_detector_visit(self):
        product = simulate_detector_visit(self.spec, self.config)
        truth = product.truth
        self.assertGreater(len(truth), 40)
        injected_real = truth["injected"] & truth["is_real"]
        self.assertGreater(injected_real.sum(), 0.5 * len(truth))
        # Natural detections keep their natural labels.
        self.assertTrue(set(truth["truth_class"][~truth["injected"]]) <= set(REAL_CLASSES) | set(BOGUS_CLASSES))

    def test_natural_detections_keep_their_labels(self):
        """The natural sky of an injected detector-visit is that of the same
        detector-visit without injection: its detections that no injected
        source hides or reaches are found again, with the same labels.
        """
        from scipy.spatial import cKDTree

        config = make_config("train")
        config.survey.visitsPerTract = 2
        config.injection.tracts = []
        plain = simulate_detector_visit(self.spec, config)
        self.assertFalse(plain.truth["injected"].any())
        injected = simulate_detector_visit(self.spec, self.config)
        np.testing.assert_array_equal(plain.science_masks["BAD"], injected.science_masks["BAD"])
        tree = cKDTree(np.column_stack([injected.sources["slot_Centroid_x"], injected.sources["slot_Centroid_y"]]))
        distance, match = tree.query(np.column_stack([plain.sources["slot_Centroid_x"], plain.sources["slot_Centroid_y"]]))
        natural = (distance < 1.5) & ~np.asarray(injected.truth["injected"])[match]
        self.assertGreater(natural.sum(), 0)
        self.assertEqual(list(np.asarray(plain.truth["truth_class"])[natural]),
                         list(np.asarray(injected.truth["truth_class"])[match[natural]]))


class CoverageTestCase(lsst.utils.tests.TestCase):
    def test_border_decides_inside_and_outside(self):
        config = make_config("demo")
        config.survey.visitsPerTract = 24
        config.survey.edgePointingFraction = 0.99
        from lsst.meas.realbogus.simulation._survey import template_coverage as per_pixel

        crossing = 0
        for spec in plan_survey(config)[:40]:
            covered = detector_coverage(spec)
            yy, xx = np.mgrid[0 : spec.height, 0 : spec.width]
            exact = per_pixel(spec.visit.tract, *spec.wcs.pixel_to_sky(xx.ravel(), yy.ravel()))
            np.testing.assert_array_equal(covered, exact.reshape(covered.shape))
            self.assertTrue(covered.any())  # uncovered detectors are not planned
            crossing += not covered.all()
        self.assertGreater(crossing, 0)


class PlanTestCase(lsst.utils.tests.TestCase):
    def test_visits_by_tract(self):
        config = make_config("ci")
        config.survey.visitsPerTract = 3
        config.survey.visitsByTract = {3080: 1}
        config.survey.edgePointingFraction = 0.0
        visits = {spec.visit.visit for spec in plan_survey(config)}
        self.assertEqual(sorted(visits), [3080000, 4024000, 4024001, 4024002])

    def test_tract_plan_independent_of_other_tracts(self):
        """A test tract's visits are the same whatever the training tract's
        visit count (the demo's tract 4024 stays fixed).
        """
        def tract_4024(visits_3080):
            config = make_config("demo")
            config.survey.visitsByTract = {3080: visits_3080}
            return [(s.visit, s.detector, s.wcs.pixel_to_sky(10.0, 20.0)) for s in plan_survey(config)
                    if s.visit.tract == 4024]

        one, other = tract_4024(3), tract_4024(7)
        self.assertGreater(len(one), 20)
        self.assertEqual(one, other)


class SaturationTestCase(lsst.utils.tests.TestCase):
    def test_bleed_conserves_charge(self):
        image = np.full((50, 5), 100.0)
        image[25, 2] = 10_000.0
        total = image.sum()
        sat = np.zeros(image.shape, bool)
        amap = ArtifactMap(image.shape)
        apply_saturation(image, amap, sat, full_well=1000.0)
        self.assertLessEqual(image.max(), 1000.0)
        self.assertAlmostEqual(image.sum(), total, places=6)
        # Bled along the column only.
        np.testing.assert_array_equal(image[:, [0, 1, 3, 4]], 100.0)
        self.assertGreaterEqual(sat[:, 2].sum(), 9)
        self.assertTrue((amap.codes[:, 2] > 0).any())


class DetectorVisitTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = _small_config()
        cls.specs = plan_survey(cls.config)
        cls.product = simulate_detector_visit(cls.specs[0], cls.config)

    def test_deterministic(self):
        again = simulate_detector_visit(self.specs[0], self.config)
        for name in ("science_image", "template_image", "difference_image", "difference_variance"):
            np.testing.assert_array_equal(getattr(again, name), getattr(self.product, name))
        self.assertEqual(list(again.sources["id"]), list(self.product.sources["id"]))
        other = _small_config(seed=2)
        changed = simulate_detector_visit(plan_survey(other)[0], other)
        self.assertFalse(np.array_equal(changed.science_image, self.product.science_image))

    def test_planes_and_units(self):
        p = self.product
        shape = (self.config.survey.detectorHeight, self.config.survey.detectorWidth)
        for name in ("science", "template", "difference"):
            self.assertEqual(getattr(p, f"{name}_image").shape, shape)
            self.assertEqual(getattr(p, f"{name}_image").dtype, np.float32)
        # Background-subtracted: the median science pixel is near zero, and
        # the noise matches the variance plane.
        sci = p.science_image[~p.science_masks["SAT"]]
        self.assertLess(abs(np.median(sci)), 0.5 * np.sqrt(np.median(p.science_variance)))
        finite = np.isfinite(p.difference_image)
        pull = p.difference_image[finite] / np.sqrt(p.difference_variance[finite])
        mad = 1.4826 * np.median(np.abs(pull - np.median(pull)))
        self.assertAlmostEqual(mad, 1.0, delta=0.15)
        # The template is deeper than the science image.
        self.assertLess(np.nanmedian(p.template_variance), 0.2 * np.median(p.science_variance))

    def test_truth_one_row_per_source(self):
        p = self.product
        self.assertEqual(list(p.truth["id"]), list(p.sources["id"]))
        classes = set(p.truth["truth_class"])
        self.assertTrue(classes <= set(REAL_CLASSES) | set(BOGUS_CLASSES))
        real = np.array([c in REAL_CLASSES for c in p.truth["truth_class"]])
        np.testing.assert_array_equal(real, np.asarray(p.truth["is_real"]))
        # Reals carry the injected flux with the detection's sign.
        r = p.truth[p.truth["is_real"]]
        if len(r):
            s = p.sources[np.asarray(p.truth["is_real"])]
            np.testing.assert_array_equal(np.sign(r["true_flux"]), np.where(s["is_negative"], -1, 1))

    def test_template_coverage(self):
        # The tract centre is covered; a point 2 degrees away is not.
        from lsst.meas.realbogus.simulation import TRACTS

        for tract, (ra, dec) in TRACTS.items():
            self.assertTrue(template_coverage(tract, np.array([ra]), np.array([dec]))[0])
            self.assertFalse(template_coverage(tract, np.array([ra]), np.array([dec + 2.0]))[0])


class MemoryTester(lsst.utils.tests.MemoryTestCase):
    pass


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
