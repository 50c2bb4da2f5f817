"""Synthetic fingerprints at the minutiae level: stable per-identity masters, distorted captures.

Model (500 dpi pixels, ``y`` pointing down, angles in radians, visual counter-clockwise):

* **Master.** Finger ``f`` of identity ``i`` owns a master minutiae set drawn from
  ``default_rng((seed, i, f))``, so it does not depend on generation order. Its ridge flow is
  a zero-pole orientation field (Sherlock & Monro 1993) of one of the usual pattern classes
  (loops ≈ 60 %, whorls ≈ 33 %, arches ≈ 7 %), with the core placed randomly near the centre.
  Minutiae sit on a jittered grid inside an elliptical finger area (so two are never closer
  than about 10 px, as ridge spacing forbids), about 50 per finger; each points along the
  ridge flow (one of the two senses), is a ridge ending or a bifurcation, and has an intrinsic
  reliability that governs how often captures lose it.
* **Capture.** A fresh impression applies, in order: a smooth non-linear (elastic) displacement
  field of a few pixels, a small anisotropic scale, a rotation (sd 10°, clipped to ±35°) and
  translation (sd 18 px) of the whole finger, a contact window (an ellipse that is off-centre
  and smaller than the finger; with probability ``partial_rate`` a strongly shifted, small
  window, i.e. a partial print), minutia loss (12 % plus more at low capture quality and low
  reliability), position (2.5 px) and direction (6°) jitter, spurious minutiae along the ridge
  flow, ridge ending ↔ bifurcation confusions, and clipping to the image.

Orientation fields are shared in style across fingers, which makes impostor pairs harder than
uniformly random minutiae would (neighbouring minutiae of any two prints point alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sanad.biometrics.finger.template import (
    FingerMinutiaeRecord,
    FingerPosition,
    FingerView,
    MinutiaeArray,
)

IMAGE_WIDTH = 320
IMAGE_HEIGHT = 400
_CENTRE = np.array([IMAGE_WIDTH / 2.0, IMAGE_HEIGHT / 2.0])
_SEMI_AXES = np.array([140.0, 180.0])  # the finger's area on the master
_CELL = 34.0  # jittered-grid cell; 0.15..0.85 jitter keeps minutiae ≥ ~10 px apart
_OCCUPANCY = 0.68


@dataclass(frozen=True)
class CaptureSettings:
    """Acquisition noise of `SyntheticFingers.capture` (defaults: a supervised live scan)."""

    rotation_sd_deg: float = 10.0
    translation_sd: float = 18.0
    elastic_amplitude: float = 3.0
    position_jitter: float = 2.5
    angle_jitter_deg: float = 6.0
    missing_rate: float = 0.10
    spurious_mean: float = 4.0
    type_flip_rate: float = 0.15
    partial_rate: float = 0.05


def _orientation(xy: npt.NDArray[np.float64], params: npt.NDArray[np.float64]) -> npt.NDArray[
    np.float64
]:
    """Ridge orientation (mod π) at ``xy`` from a zero-pole model encoded in ``params``.

    ``params`` = [kind, core_x, core_y, delta1_x, delta1_y, delta2_x, delta2_y, base]; kind 0 =
    arch (no singularity), 1 = loop (one core, one delta), 2 = whorl (two cores, two deltas).
    """
    kind = int(params[0])
    z = xy[:, 0] + 1j * -xy[:, 1]  # y up for the complex-plane model
    base = params[7]
    if kind == 0:
        u = (xy[:, 0] - params[1]) / 160.0
        v = (xy[:, 1] - params[2]) / 200.0
        angle: npt.NDArray[np.float64] = base + 0.6 * np.exp(-(u**2)) * np.tanh(3 * v) * np.sign(u)
        return angle
    core = params[1] - 1j * params[2]
    delta1 = params[3] - 1j * params[4]
    phase = np.angle(z - core) - np.angle(z - delta1)
    if kind == 2:
        core2 = core - 30j
        delta2 = params[5] - 1j * params[6]
        phase = phase + np.angle(z - core2) - np.angle(z - delta2)
    result: npt.NDArray[np.float64] = base + 0.5 * phase
    return result


class SyntheticFingers:
    """Reproducible synthetic fingers: ``master(i, f)`` is fixed by ``(seed, i, f)``."""

    def __init__(self, seed: int, settings: CaptureSettings | None = None) -> None:
        if seed < 0:
            raise ValueError("seed must be non-negative")
        self.seed = seed
        self.settings = settings or CaptureSettings()

    def _field(self, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        u = rng.random()
        kind = 0 if u < 0.07 else (1 if u < 0.67 else 2)
        core = _CENTRE + rng.normal(0.0, [25.0, 30.0]) - [0.0, 30.0]
        side = 1.0 if rng.random() < 0.5 else -1.0
        delta1 = core + np.array([side * rng.uniform(60, 110), rng.uniform(90, 140)])
        delta2 = core + np.array([-side * rng.uniform(60, 110), rng.uniform(90, 140)])
        base = rng.normal(0.0, 0.15)
        return np.array([kind, *core, *delta1, *delta2, base])

    def master(self, identity: int, finger: int) -> tuple[MinutiaeArray, npt.NDArray[np.float64]]:
        """Master minutiae ``(n, 5)`` of ``finger`` (1..10) of ``identity`` and its field params.

        Columns: x, y, theta, type (1 ending, 2 bifurcation), reliability (0..1; stored in the
        quality column of captures after scaling).
        """
        if identity < 0 or not 1 <= finger <= 10:
            raise ValueError("identity must be >= 0 and finger in 1..10")
        rng = np.random.default_rng((self.seed, identity, finger))
        field = self._field(rng)
        gx = np.arange(_CENTRE[0] - _SEMI_AXES[0], _CENTRE[0] + _SEMI_AXES[0], _CELL)
        gy = np.arange(_CENTRE[1] - _SEMI_AXES[1], _CENTRE[1] + _SEMI_AXES[1], _CELL)
        cells = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        xy = cells + rng.uniform(0.15, 0.85, size=cells.shape) * _CELL
        inside = np.sum(((xy - _CENTRE) / _SEMI_AXES) ** 2, axis=1) <= 1.0
        keep = inside & (rng.random(len(xy)) < _OCCUPANCY)
        xy = xy[keep]
        theta = _orientation(xy, field) + math.pi * rng.integers(0, 2, size=len(xy))
        mtype = rng.choice([1.0, 2.0], size=len(xy), p=[0.55, 0.45])
        reliability = rng.beta(5.0, 1.5, size=len(xy))
        out = np.column_stack([xy, np.mod(theta, 2 * math.pi), mtype, reliability])
        return out.astype(np.float32), field

    def capture(
        self,
        identity: int,
        finger: int,
        rng: np.random.Generator,
        *,
        quality: float | None = None,
    ) -> MinutiaeArray:
        """A fresh distorted impression, ``(n, 5)`` float32: x, y, theta, type, quality 1..100.

        ``quality`` (0..1) is the capture's overall quality; drawn (mostly good) when omitted.
        """
        master, field = self.master(identity, finger)
        s = self.settings
        q = float(rng.beta(6.0, 1.6)) if quality is None else float(np.clip(quality, 0.0, 1.0))
        xy = master[:, :2].astype(np.float64)
        theta = master[:, 2].astype(np.float64)

        # Elastic: two smooth sine displacement modes (wavelengths 250-500 px).
        disp = np.zeros_like(xy)
        for _ in range(2):
            k = rng.normal(size=2)
            k *= 2 * math.pi / rng.uniform(250, 500) / np.linalg.norm(k)
            phase = rng.uniform(0, 2 * math.pi)
            amp = rng.normal(0.0, s.elastic_amplitude, size=2)
            disp += np.sin(xy @ k + phase)[:, None] * amp
        xy = xy + disp
        xy = _CENTRE + (xy - _CENTRE) * (1.0 + rng.normal(0.0, 0.02, size=2))

        # Whole-finger placement on the sensor (rotation about the image centre).
        rot = math.radians(float(np.clip(rng.normal(0.0, s.rotation_sd_deg), -35, 35)))
        c, sn = math.cos(rot), math.sin(rot)
        # Visual counter-clockwise with y down: (x, y) -> (c x + s y, -s x + c y).
        rel = xy - _CENTRE
        xy = _CENTRE + np.column_stack(
            [c * rel[:, 0] + sn * rel[:, 1], -sn * rel[:, 0] + c * rel[:, 1]]
        )
        xy = xy + rng.normal(0.0, s.translation_sd, size=2)
        theta = theta + rot

        # Contact window on the sensor: off-centre, smaller than the finger; sometimes partial.
        if rng.random() < s.partial_rate:
            direction = rng.uniform(0, 2 * math.pi)
            shift = rng.uniform(50, 90)
            centre = _CENTRE + shift * np.array([math.cos(direction), math.sin(direction)])
            axes = _SEMI_AXES * rng.uniform(0.55, 0.75)
        else:
            centre = _CENTRE + rng.normal(0.0, 15.0, size=2)
            axes = _SEMI_AXES * rng.uniform(0.8, 1.0, size=2)
        seen = np.sum(((xy - centre) / axes) ** 2, axis=1) <= 1.0

        reliability = master[:, 4].astype(np.float64)
        p_miss = s.missing_rate + 0.25 * (1 - q) + 0.2 * (1 - reliability)
        kept = seen & (rng.random(len(xy)) >= p_miss)
        xy = xy[kept] + rng.normal(0.0, s.position_jitter, size=(int(kept.sum()), 2))
        jitter = math.radians(s.angle_jitter_deg)
        theta = theta[kept] + rng.normal(0.0, jitter, size=int(kept.sum()))
        mtype = master[kept, 3].astype(np.float64)
        flip = rng.random(len(mtype)) < s.type_flip_rate
        mtype[flip] = 3.0 - mtype[flip]
        mq = np.clip(100 * q * reliability[kept] + rng.normal(0, 8, size=len(mtype)), 1, 100)

        # Spurious minutiae follow the ridge flow (they come from breaks and bridges).
        n_spur = int(rng.poisson(s.spurious_mean * (1.0 + 2.0 * (1 - q))))
        if n_spur:
            ang = rng.uniform(0, 2 * math.pi, n_spur)
            rad = np.sqrt(rng.random(n_spur))
            sxy = centre + np.column_stack([np.cos(ang), np.sin(ang)]) * axes * rad[:, None]
            # The field lives in master coordinates: undo the placement approximately.
            back = sxy - _CENTRE
            master_xy = _CENTRE + np.column_stack(
                [c * back[:, 0] - sn * back[:, 1], sn * back[:, 0] + c * back[:, 1]]
            )
            st = _orientation(master_xy, field) + rot + math.pi * rng.integers(0, 2, n_spur)
            xy = np.vstack([xy, sxy])
            theta = np.concatenate([theta, st])
            mtype = np.concatenate([mtype, rng.choice([1.0, 2.0], size=n_spur)])
            mq = np.concatenate([mq, rng.uniform(5, 60, size=n_spur)])

        inside = (
            (xy[:, 0] >= 0) & (xy[:, 0] <= IMAGE_WIDTH - 1) & (xy[:, 1] >= 0)
            & (xy[:, 1] <= IMAGE_HEIGHT - 1)
        )
        out = np.column_stack(
            [
                np.rint(xy[inside]),
                np.mod(theta[inside], 2 * math.pi),
                mtype[inside],
                np.rint(mq[inside]),
            ]
        )
        order = rng.permutation(len(out))  # extractors list minutiae in no meaningful order
        return out[order].astype(np.float32)

    def capture_view(
        self, identity: int, finger: FingerPosition | int, rng: np.random.Generator
    ) -> FingerView:
        """A capture as a `FingerView` (ISO units; at most 255 minutiae, best quality first)."""
        arr = self.capture(identity, int(finger), rng)
        if len(arr) > 255:
            arr = arr[np.argsort(-arr[:, 4])[:255]]
        quality = int(np.clip(np.median(arr[:, 4]) if len(arr) else 0, 0, 100))
        return FingerView.from_array(finger, arr, quality=quality)

    def capture_record(
        self, identity: int, fingers: tuple[FingerPosition | int, ...], rng: np.random.Generator
    ) -> FingerMinutiaeRecord:
        """A multi-view ISO record holding one capture of each of ``fingers``."""
        views = tuple(self.capture_view(identity, f, rng) for f in fingers)
        return FingerMinutiaeRecord(views=views, image_width=IMAGE_WIDTH, image_height=IMAGE_HEIGHT)
