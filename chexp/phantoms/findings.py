"""The five findings, one class each, registered in :data:`FINDING_RENDERERS`.

A finding renders a *density change* (B, S, S) that is added to the anatomy's density. It is
exactly zero outside its support, and the support is the finding's mask: the generator zeroes
values below :data:`MASK_EPS` and records ``|delta| > MASK_EPS`` as the mask. Because the
exposure map is strictly increasing and the noise depends only on the local signal, the image
with the finding differs from the image without it exactly on the mask.

Each finding reads its parameters from its own random stream (a :class:`ParamSpace`) and may
read the anatomy (lung shape, heart ellipse, markings), never another finding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from scipy import ndimage

from .anatomy import AnatomyMaps, ellipse_weight, heart_floor, lung_metric, side_params
from .config import FINDINGS
from .params import ParamBatch, ParamSpace

#: Density changes at or below this are treated as "no change" (and excluded from the mask).
MASK_EPS = 1e-3

#: Uniform draws taken from each finding's stream (the first decides the label).
N_FINDING_UNIFORMS = 16

#: Lowest density a finding may leave behind (pneumothorax), keeping images above the clip limit.
MIN_DENSITY = 0.12


class Finding(ABC):
    """Base class: ``render(params, anatomy) -> density change (B, S, S) float32``."""

    name: ClassVar[str]
    space: ClassVar[ParamSpace]

    @abstractmethod
    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        """The density change (B, S, S) float32 of the finding in every image of the batch."""


def _side_maps(a: AnatomyMaps, side: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(lung thickness of the chosen side, its shape parameters, +1 for image-left lung else -1)."""
    s = side.reshape(-1, 1, 1).astype(bool)
    thick = np.where(s, a.thick_l, a.thick_r)
    sgn = np.where(s, -1.0, 1.0).astype(np.float32)  # direction from the lung centre to its medial edge
    return thick, side_params(a.params, side), sgn


class Cardiomegaly(Finding):
    """Enlarged cardiac silhouette: the heart ellipse scaled about a point inside it so that the
    cardiothoracic ratio becomes ``ctr_big`` (0.58-0.72; normal hearts 0.43-0.50; measured as
    silhouette width over lung-field width on the masks: about 0.58-0.71 versus 0.41-0.48).

    The density change is (enlarged weight - normal weight) x (heart density + displaced lung air):
    zero inside the normal heart, so the mask is the enlarged silhouette minus the normal one.
    """

    name = "Cardiomegaly"
    space = ParamSpace([("ctr_big", 0.58, 0.72), ("anchor_u", 0.35, 0.6), ("anchor_v", 0.15, 0.45)])

    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        h = a.params
        scale = np.maximum(p.ctr_big / h.ctr, 1.15)
        hw = h.ctr * (h.wt_r + h.wt_l) / 2
        phi = h.heart_tilt
        hv = np.sqrt((h.heart_a * np.sin(phi)) ** 2 + (h.heart_b * np.cos(phi)) ** 2)
        ax_ = h.heart_x - p.anchor_u * hw
        ay_ = h.heart_y + p.anchor_v * hv
        cx = ax_ + scale * (h.heart_x - ax_)
        cy = ay_ + scale * (h.heart_y - ay_)
        big = ellipse_weight(a.x, a.y, cx, cy, scale * h.heart_a, scale * h.heart_b, phi, a.edge)
        big = big * heart_floor(a.x, a.y, h, a.edge)
        gain = np.maximum(big, a.heart_w) - a.heart_w
        thick = a.thick_r + a.thick_l
        return (gain * (h.heart_dens + a.air - h.parenchyma * thick)).astype(np.float32)


class Effusion(Finding):
    """Pleural effusion on one side or both: fluid filling the lung base above the diaphragm up
    to a meniscus that climbs along the lateral chest wall (blunting the costophrenic angle)."""

    name = "Effusion"
    space = ParamSpace(
        [
            ("sides", 0.0, 1.0),  # < 0.4 image-left lung, < 0.8 image-right lung, else both
            ("height_r", 0.25, 0.55),
            ("height_l", 0.25, 0.55),
            ("meniscus", 0.10, 0.22),
            ("ramp", 0.04, 0.10),
            ("fill", 0.75, 1.0),
        ]
    )

    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        sides = p.raw("sides")
        out = np.zeros_like(a.density)
        for side, on in ((0, (sides < 0.4) | (sides >= 0.8)), (1, sides >= 0.4)):
            rows = np.flatnonzero(on)
            if rows.size == 0:
                continue
            sub = a.take(rows)
            q = p.take(rows)
            thick, sp, sgn = _side_maps(sub, np.full(rows.size, side))
            height = q.height_l if side else q.height_r
            lateral_edge = sp["cx"] - sgn * sp["ax"]
            t_med = np.clip(np.abs(sub.x - lateral_edge) / (2 * sp["ax"]), 0.0, 1.0)
            level = sp["cy"] - height + q.meniscus * t_med * np.sqrt(t_med)
            w = np.clip((sub.y - level) / q.ramp, 0.0, 1.0)
            inside = (thick > 0) & (sub.y > level)
            delta = np.where(inside, np.sqrt(w) * (q.fill * sub.air * (1.0 - sub.heart_w) + 0.1), 0.0)
            out[rows] += delta.astype(np.float32)
        return out


class Mass(Finding):
    """Round (slightly lobulated, elliptic) opacity centred in a lung field; radius 0.055-0.12
    patient units (4-8 px at S=128), peak density 0.4-0.75."""

    name = "Mass"
    space = ParamSpace(
        [
            ("pos", 0.0, 1.0),
            ("r", 0.06, 0.13),
            ("amp", 0.40, 0.75),
            ("lob", 0.0, 0.15),
            ("lob_k", 2.0, 5.999),
            ("lob_phase", 0.0, 2 * np.pi),
            ("ecc", 0.85, 1.15),
        ]
    )

    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        size = a.size
        out = np.zeros_like(a.density)
        px_units = 2.0 / size / a.params.raw("zoom")
        r, ecc, lob = p.raw("r"), p.raw("ecc"), p.raw("lob")
        for i in range(len(out)):
            dist = ndimage.distance_transform_edt(a.lungs[i]) * px_units[i]
            cand = np.flatnonzero(dist >= 0.6 * r[i])
            if cand.size == 0:
                cand = np.array([int(np.argmax(dist))])
            j = int(cand[min(int(p.raw("pos")[i] * cand.size), cand.size - 1)])
            ci, cj = divmod(j, size)
            # render in a crop around the centre (the mass is much smaller than the image)
            reach = int(np.ceil(r[i] * (1 + lob[i]) * max(ecc[i], 1 / ecc[i]) / px_units[i] * 1.2)) + 3
            sl = (slice(max(ci - reach, 0), ci + reach + 1), slice(max(cj - reach, 0), cj + reach + 1))
            dx = (a.x[i][sl] - a.x[i, ci, cj]) / ecc[i]
            dy = (a.y[i][sl] - a.y[i, ci, cj]) * ecc[i]
            theta = np.arctan2(dy, dx)
            radius = r[i] * (1.0 + lob[i] * np.sin(np.floor(p.raw("lob_k")[i]) * theta + p.raw("lob_phase")[i]))
            rho2 = (dx * dx + dy * dy) / (radius * radius)
            out[i][sl] = p.raw("amp")[i] * np.clip(1.0 - rho2, 0.0, 1.0) ** 0.35
        return out


class Pneumothorax(Finding):
    """Apico-lateral pneumothorax on one side: the lung collapses away from the apex and lateral
    wall; between chest wall and the visceral pleural line there are no lung markings and the
    density drops (extra air); the pleural line itself is a thin bright curve."""

    name = "Pneumothorax"
    space = ParamSpace(
        [
            ("side", 0.0, 1.0),
            ("dep_y", 0.18, 0.40),
            ("dep_x", 0.12, 0.30),
            ("extra", 0.08, 0.18),
            ("line_amp", 0.10, 0.22),
            ("line_px", 1.0, 1.6),
        ]
    )

    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        side = p.raw("side") >= 0.5
        thick, sp, sgn = _side_maps(a, side)
        cx, ax, cy, ay = sp["cx"], sp["ax"], sp["cy"], sp["ay"]
        ay_c = ay * (1.0 - p.dep_y)
        # the lateral border retracts most at the apex and not at all at the base
        up = np.clip((cy - a.y) / ay, 0.0, 1.0)
        ax_c = ax * (1.0 - p.dep_x * up * np.sqrt(up))
        cx_c = cx + sgn * (ax - ax_c)  # keep the medial border in place
        f_c = lung_metric(a.x, a.y, cx_c, ax_c, cy, ay_c)
        lung = thick > 0
        region = lung & (f_c >= 1.0)
        # distance (patient units) inside the collapsed lung's border, from the metric's gradient
        u = (a.x - cx_c) / ax_c
        gx = 3.0 * u * u / ax_c
        gy = 2.0 * np.abs(a.y - cy) / (ay_c * ay_c)
        depth = (1.0 - f_c) / (np.sqrt(gx * gx + gy * gy) + 1e-6)
        line_w = p.line_px * 2.0 / a.size / a.params.zoom
        line = lung & (f_c < 1.0) & (depth < line_w)
        removed = a.markings + a.params.parenchyma * thick + p.extra
        removed = np.minimum(removed, a.density - MIN_DENSITY)  # never darker than air
        return np.where(region, -removed, np.where(line, p.line_amp, 0.0)).astype(np.float32)


def _cubic_bezier(ctrl: np.ndarray, m: int) -> np.ndarray:
    """Points (B, m, 2) on cubic Bezier curves with control points (B, 4, 2)."""
    t = np.linspace(0.0, 1.0, m)[None, :, None]
    c = ctrl[:, :, None, :]
    return (1 - t) ** 3 * c[:, 0] + 3 * (1 - t) ** 2 * t * c[:, 1] + 3 * (1 - t) * t**2 * c[:, 2] + t**3 * c[:, 3]


def _polyline_distance(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance (B, S, S) from each pixel to a polyline (B, m, 2)."""
    best = np.full(x.shape, np.inf, dtype=np.float32)
    for k in range(pts.shape[1] - 1):
        x0 = pts[:, k, 0, None, None].astype(np.float32)
        y0 = pts[:, k, 1, None, None].astype(np.float32)
        ex = pts[:, k + 1, 0, None, None].astype(np.float32) - x0
        ey = pts[:, k + 1, 1, None, None].astype(np.float32) - y0
        px, py = x - x0, y - y0
        t = np.clip((px * ex + py * ey) / (ex * ex + ey * ey + 1e-9), 0.0, 1.0)
        dx, dy = px - t * ex, py - t * ey
        np.minimum(best, dx * dx + dy * dy, out=best)
    return np.sqrt(best)


def _device_controls(kind: np.ndarray, j: np.ndarray, h: ParamBatch) -> np.ndarray:
    """Control points (B, 4, 2) of each device kind: 0 ET tube, 1 right jugular line,
    2 left subclavian line, 3 nasogastric tube. ``j`` (B, 4) jitters in [-1, 1]."""
    xs = h.raw("xs")
    car = h.raw("carina")
    td = h.raw("trachea_dev")
    dome_l = h.raw("dome_y_l")
    wt_l = h.raw("wt_l")
    z = np.zeros_like(xs)
    options = np.stack(
        [
            # endotracheal tube: down the trachea, tip above the carina
            [
                [xs + td + 0.02 * j[:, 0], z - 1.2],
                [xs + td + 0.015 * j[:, 1], z - 0.9],
                [xs + td, car - 0.25],
                [xs + td + 0.01 * j[:, 2], car - 0.06 - 0.07 * np.abs(j[:, 3])],
            ],
            # right internal jugular line: from the neck into the SVC
            [
                [xs - 0.30 - 0.05 * j[:, 0], z - 1.2],
                [xs - 0.12 + 0.03 * j[:, 1], z - 0.78],
                [xs - 0.07 + 0.02 * j[:, 2], z - 0.50],
                [xs - 0.07, z - 0.22 + 0.06 * j[:, 3]],
            ],
            # left subclavian line: from under the left clavicle across to the SVC
            [
                [xs + 0.68 + 0.05 * j[:, 0], z - 0.80 + 0.04 * j[:, 1]],
                [xs + 0.25, z - 0.70 + 0.03 * j[:, 2]],
                [xs - 0.02, z - 0.58],
                [xs - 0.07, z - 0.26 + 0.06 * j[:, 3]],
            ],
            # nasogastric tube: down the oesophagus into the stomach under the left dome
            [
                [xs + 0.015 * j[:, 0], z - 1.2],
                [xs + 0.03 * j[:, 1], z - 0.1],
                [xs + 0.06, dome_l + 0.08],
                [xs + 0.35 * wt_l + 0.05 * j[:, 2], dome_l + 0.18 + 0.04 * j[:, 3]],
            ],
        ]
    )  # (4 kinds, 4 points, 2, B)
    options = np.moveaxis(options, -1, 0)  # (B, kinds, 4, 2)
    return options[np.arange(len(xs)), kind]


class SupportDevices(Finding):
    """One or two tubes/lines (ET tube, jugular or subclavian central line, NG tube): thin bright
    curves with brighter walls. Half-width 0.016-0.024 patient units, at least 1.1 pixels."""

    name = "Support Devices"
    space = ParamSpace(
        [
            ("second", 0.0, 1.0),  # a second device when < 0.3
            ("kind1", 0.0, 3.999),
            ("kind2", 0.0, 3.999),
            ("amp", 0.6, 1.1),
            ("hw", 0.016, 0.024),
            *[(f"j{k}", -1.0, 1.0) for k in range(8)],
        ]
    )

    def render(self, p: ParamBatch, a: AnatomyMaps) -> np.ndarray:
        hw = np.maximum(p.hw, 1.1 * 2.0 / a.size / a.params.zoom)
        out = np.zeros_like(a.density)
        k1 = p.raw("kind1").astype(int)
        k2 = (k1 + 1 + (p.raw("kind2") * 3 / 3.999).astype(int)) % 4  # a different kind
        jit = np.stack([p.raw(f"j{k}") for k in range(8)], axis=1)
        m = max(10, a.size // 12)
        for kind, jj, rows in (
            (k1, jit[:, :4], np.arange(len(k1))),
            (k2, jit[:, 4:], np.flatnonzero(p.raw("second") < 0.3)),
        ):
            if rows.size == 0:
                continue
            pts = _cubic_bezier(_device_controls(kind[rows], jj[rows], a.params.take(rows)), m)
            d = _polyline_distance(a.x[rows], a.y[rows], pts) / hw[rows]
            tube = np.where(d < 1.0, p.amp[rows] * (0.55 + 0.45 * d * d), 0.0)
            out[rows] = np.maximum(out[rows], tube)
        return out.astype(np.float32)


#: One renderer per finding, in :data:`FINDINGS` order.
FINDING_RENDERERS: dict[str, Finding] = {
    cls.name: cls() for cls in (Cardiomegaly, Effusion, Mass, Pneumothorax, SupportDevices)
}
assert tuple(FINDING_RENDERERS) == FINDINGS
assert all(len(r.space) < N_FINDING_UNIFORMS for r in FINDING_RENDERERS.values())
