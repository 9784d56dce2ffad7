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

"""PSF matching of the template to the science image, and subtraction."""

from __future__ import annotations

__all__ = ["DifferenceResult", "matching_kernel", "subtract"]

import dataclasses

import numpy as np
from scipy import ndimage, signal


def matching_kernel(
    science_psf: np.ndarray, template_psf: np.ndarray, regularization: float = 1e-7
) -> np.ndarray:
    """Kernel K with ``template_psf * K ~= science_psf``, of unit sum.

    A Wiener-regularized Fourier division of the two PSF models, truncated
    to the stamp size: like the pipeline's fitted kernel, it is built from
    models and has finite support, so it never matches the data exactly.

    Parameters
    ----------
    science_psf, template_psf : `numpy.ndarray`, (K, K)
        Centred, unit-sum PSF images of the same odd size.
    regularization : `float`, optional
        Wiener term relative to the template's peak power.
    """
    size = science_psf.shape[0]
    pad = 2 * size + 1  # odd, so the centre pixel maps to frequency origin
    s_hat = np.fft.fft2(np.fft.ifftshift(_pad_centered(science_psf, pad)))
    t_hat = np.fft.fft2(np.fft.ifftshift(_pad_centered(template_psf, pad)))
    power = np.abs(t_hat) ** 2
    k_hat = s_hat * np.conj(t_hat) / (power + regularization * power.max())
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(k_hat)))
    start = (pad - size) // 2
    kernel = kernel[start:start + size, start:start + size]
    # A hard square cut leaves a ringing frame around every bright star;
    # a radial Tukey taper (flat to half the radius, then a cosine roll-off)
    # gives the kernel compact, smooth support.
    r = np.hypot(*np.mgrid[0:size, 0:size] - size // 2) / (size // 2 + 1)
    taper = np.where(r < 0.5, 1.0, 0.5 * (1 + np.cos(2 * np.pi * (np.clip(r, 0.5, 1.0) - 0.5))))
    kernel = kernel * taper
    return kernel / kernel.sum()


def _pad_centered(stamp: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size))
    start = (size - stamp.shape[0]) // 2
    out[start:start + stamp.shape[0], start:start + stamp.shape[1]] = stamp
    return out


@dataclasses.dataclass
class DifferenceResult:
    """A difference image and its planes (nJy)."""

    image: np.ndarray
    variance: np.ndarray
    no_data: np.ndarray
    edge: np.ndarray
    kernel: np.ndarray


def subtract(
    science: np.ndarray,
    science_variance: np.ndarray,
    template: np.ndarray,
    template_variance: np.ndarray,
    kernel: np.ndarray,
    *,
    edge_width: int,
) -> DifferenceResult:
    """Convolve the template with the kernel and subtract it from the science.

    Template NO_DATA (NaN) pixels are zero-filled before convolution and
    the NO_DATA mask grows by the kernel footprint; difference pixels there
    are NaN. The template only covers the detector, so convolution runs off
    it within half a kernel of the border: those pixels are marked EDGE (at
    least ``edge_width`` wide) but kept, as in the pipeline.
    """
    no_data_t = ~np.isfinite(template)
    filled = np.where(no_data_t, 0.0, template)
    filled_var = np.where(no_data_t, 0.0, template_variance)
    convolved = signal.fftconvolve(filled, kernel, mode="same")
    convolved_var = signal.fftconvolve(filled_var, kernel**2, mode="same")
    footprint = np.abs(kernel) > 1e-3 * np.abs(kernel).max()
    no_data = ndimage.binary_dilation(no_data_t, structure=footprint) if no_data_t.any() else no_data_t
    diff = science - convolved
    var = science_variance + convolved_var
    diff[no_data] = np.nan
    var[no_data] = np.nan
    border = max(edge_width, kernel.shape[0] // 2)
    edge = np.zeros(science.shape, dtype=bool)
    edge[:border, :] = edge[-border:, :] = True
    edge[:, :border] = edge[:, -border:] = True
    return DifferenceResult(diff.astype(np.float32), var.astype(np.float32), no_data, edge, kernel)
