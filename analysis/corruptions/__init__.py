"""Batched image corruptions: the MNIST-C suite for grayscale and the CIFAR-10-C suite for colour.

Two published benchmarks define what "corrupted" means here, and each corruption follows its
reference *as the reference ran* (with the libraries of its time), not as its code reads:

* MNIST-C -- Mu & Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", 2019
  (google-research/mnist-c ``corruptions.py``). 15 corruptions of 28x28 grayscale digits at one
  setting each; :mod:`.mnist_c` builds five severities around it.
* CIFAR-10-C -- Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
  Corruptions and Perturbations", ICLR 2019 (hendrycks/robustness
  ``ImageNet-C/create_c/make_cifar_c.py``). 15 corruptions of 32x32 colour images at five
  severities (:mod:`.cifar_c`).

Both were run with the libraries of their time: skimage 0.14-0.15, scipy < 1.6, Pillow wheels
carrying IJG libjpeg 9, ImageMagick 6 through Wand (the reference statistics were measured with
skimage 0.15.0, scipy 1.2.3, Pillow 6.2.2, OpenCV 4.1.2, ImageMagick 6.9.11).

Every corruption works on a whole batch ``x: (N, C, H, W)`` float in [0, 1] at once with tensor
ops (:mod:`.ops`); the only per-image loop is Canny (skimage). Randomness comes from a
``torch.Generator`` seeded from ``(seed, suite, name, severity)``, never a global RNG, so a result
is a pure function of its arguments -- and its random draws differ from the references' numpy
draws: agreement is statistical, bitwise only where nothing is random.

How the references run where it differs from how they read (all reproduced):

* glass_blur: CIFAR-C's ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on an (H, W, 3) array copies
  a neighbour's pixel instead of swapping (the right-hand side holds views); MNIST-C's 2-D
  array swaps. MNIST-C's ``gaussian(multichannel=True)`` of a 2-D image blurs down the rows only.
  The loops are sequential; :func:`~.common.local_shuffle` runs them in wavefronts, exactly.
* motion_blur, snow: ImageMagick's 8-bit PNG output truncates (measured: the floor of the
  exact streak on >= 99.6% of pixels, one grey level off elsewhere).
* pixelate: PIL resizes uint8 images in two passes with fixed-point weights and rounds each
  pass (+0.06 .. +0.36 grey levels of mean change); reproduced to the grey level.
* jpeg_compression: Pillow's wheels then carried IJG libjpeg 9, which subsamples chroma in the
  DCT domain (:mod:`.jpeg`); today's libjpeg-turbo changes pixels ~10% less.
* elastic_transform: scipy < 1.6 ``map_coordinates(mode='reflect')`` read the wrong side within a
  pixel of the border (:func:`~.ops.legacy_scipy_reflect`); OpenCV's warp rounds source
  coordinates to 1/32 pixel.
* shear: skimage 0.15's ``AffineTransform(shear=s)`` matrix [[1, -sin s], [0, cos s]].

Deliberate deviations, with their size measured against the reference code on 128 fixed images
(``tests/data/corruption_reference.json``; mean |change| in grey levels, ours / reference):

* frost (CIFAR-C): the frost photographs are not shipped; a procedural texture with each of the
  five photos' colour, contrast and roughness stands in (:func:`~.cifar_c.frost_texture`).
  31.4/31.7, 46.9/46.1, 50.6/50.7, 45.0/45.3, 42.6/43.5 -- within 2% at every severity.
* fog (MNIST-C, 256-pixel fractal map): only the part of the map the 28x28 crop needs is computed
  and it is normalised by the extremes of the map's 4-pixel lattice (crop values within 0.0002 on
  average at decay 1.4): 72.8/73.2, 77.2/78.9, 80.9/81.6, 83.6/85.3, 88.0/88.1 (the fractal's
  per-image spread makes the standard error ~1.5).
* jpeg_compression: exact float DCTs for libjpeg's integer ones: the same mean |change| to 0.01
  grey levels; 16% of pixels differ from libjpeg 9's by a grey level or more (mean 0.26).
* motion_blur, snow: ImageMagick is not a Python dependency; its MotionBlurImage kernel and
  offsets are reproduced (:func:`~.ops.motion_streak`), checked against ImageMagick 6.9.11 Q16.
* Outputs stay float in [0, 1]: the quantisation a reference does inside a corruption is kept
  (glass blur, motion blur, snow, pixelate, JPEG), the ``np.uint8`` truncation with which
  CIFAR-10-C then stores every result (-0.5 grey levels on average) is not.
* canny_edges uses today's skimage: on the reference images it gives the same edges as 0.15.
* MNIST-C severities other than 3 are prunescope's extension (:mod:`.mnist_c`); where MNIST-C's
  function takes a parameter they were measured by running its code at that parameter.

Parameters are calibrated for 28x28 (gray) and 32x32 (colour); other sizes run with the same
pixel-unit parameters.
"""

from __future__ import annotations

from analysis.corruptions.registry import (
    COLOR_CORRUPTIONS,
    DETERMINISTIC_CORRUPTIONS,
    GRAY_CORRUPTIONS,
    SEVERITIES,
    corrupt,
    corrupt_suite,
    corruptions_for,
)

__all__ = [
    "COLOR_CORRUPTIONS",
    "DETERMINISTIC_CORRUPTIONS",
    "GRAY_CORRUPTIONS",
    "SEVERITIES",
    "corrupt",
    "corrupt_suite",
    "corruptions_for",
]
