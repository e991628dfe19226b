"""Normal chest anatomy of the phantoms, rendered as an attenuation ("density") map.

Coordinates: the patient frame is normalised so that the image spans about [-1, 1] in both
directions; x grows to the image right (the patient's left in a PA view), y grows downwards.
Every sample gets its own rotation, shift and zoom of this frame, body habitus, lung and heart
shape, ribs, clavicles, spine, diaphragm domes, mediastinum and lung markings.

Densities are additive line integrals of attenuation (dimensionless, about 0..3): soft tissue
of the trunk about 1.3, aerated lung subtracts about 1, bone adds 0.15-0.35. Findings add their
own density (see :mod:`chexp.phantoms.findings`) before the exposure map of
:mod:`chexp.phantoms.exposure` turns density into the [-1024, 1024] image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .params import ParamBatch, ParamSpace

#: Uniform draws taken from each sample's anatomy stream (some are spare for future use).
N_ANATOMY_UNIFORMS = 64

ANATOMY_SPACE = ParamSpace(
    [
        # pose and habitus
        ("rot", -0.08, 0.08),  # in-plane rotation (rad)
        ("tx", -0.04, 0.04),
        ("ty", -0.05, 0.03),
        ("zoom", 0.93, 1.05),
        ("habitus", 0.0, 1.0),
        ("wall_extra", 0.0, 1.0),
        ("asym", 0.96, 1.04),  # left/right thoracic half-width ratio
        ("thick", 1.15, 1.45),  # trunk soft-tissue density at the midline
        ("spine_off", -0.035, 0.035),  # axial rotation: spine off the thoracic midline
        ("shoulder_y", -0.84, -0.72),
        # lungs and diaphragm
        ("y_apex", -0.80, -0.68),
        ("y_cp", 0.40, 0.56),  # right costophrenic angle
        ("cp_diff", -0.02, 0.05),  # left minus right
        ("dome_h", 0.15, 0.26),  # right dome height above the costophrenic angle
        ("dome_diff", 0.02, 0.08),  # left dome lower by this
        ("dome_pk", 0.40, 0.60),  # dome peak position across the lung (0 medial, 1 lateral)
        ("med_r", 0.06, 0.10),
        ("med_l", 0.05, 0.09),
        ("air", 0.68, 0.78),  # fraction of the trunk chord taken by aerated lung
        ("parenchyma", 0.08, 0.14),
        ("mark_amp", 0.16, 0.28),
        ("mark_freq", 5.0, 8.0),
        # heart and great vessels
        ("ctr", 0.43, 0.50),
        ("heart_tilt", 0.45, 0.75),
        ("heart_aspect", 0.70, 0.84),
        ("heart_left", 0.26, 0.36),  # fraction of the heart width right of the spine (image left)
        ("heart_gap", 0.01, 0.06),
        ("heart_dens", 0.03, 0.10),  # heart minus mediastinal soft tissue
        ("knob_x", 0.08, 0.13),
        ("knob_y", -0.46, -0.36),
        ("knob_r", 0.06, 0.085),
        ("hilum_amp", 0.08, 0.16),
        # bones
        ("rib_spacing", 0.098, 0.118),
        ("rib_phase", 0.0, 0.4),
        ("rib_curve", 0.8, 1.25),
        ("rib_amp", 0.09, 0.16),
        ("rib_width", 0.40, 0.50),
        ("clav_y", -0.74, -0.62),
        ("clav_slope", 0.05, 0.15),
        ("clav_amp", 0.22, 0.34),
        ("spine_amp", 0.22, 0.32),
        ("spine_phase", 0.0, 1.0),
        ("trachea_dev", -0.02, 0.02),
        ("carina", -0.34, -0.24),
        ("bubble", 0.0, 1.0),
        ("bubble_r", 0.05, 0.09),
        # exposure and noise (used by chexp.phantoms.exposure)
        ("gamma", 0.75, 0.95),
        ("lo", -945.0, -880.0),
        ("hi", 840.0, 940.0),
        ("noise", 4.0, 16.0),
        ("noise_corr", 0.0, 0.6),
    ]
)
assert len(ANATOMY_SPACE) <= N_ANATOMY_UNIFORMS


def smooth_edge(signed: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    """0 -> 1 ramp over ``width``: 0 where ``signed <= 0``, 1 where ``signed >= width``."""
    return np.clip(signed / width, 0.0, 1.0)


def derive(p: ParamBatch) -> ParamBatch:
    """Add the derived geometry (thoracic walls, lung superellipses, domes, heart ellipse)."""
    hab = p.raw("habitus")
    wt_r = 0.60 + 0.14 * hab
    wt_l = wt_r * p.raw("asym")
    xs = p.raw("spine_off")
    p.set("xs", xs)
    p.set("wt_r", wt_r)
    p.set("wt_l", wt_l)
    p.set("body_a", (wt_r + wt_l) / 2 + 0.07 + 0.10 * hab + 0.06 * p.raw("wall_extra"))
    y_cp_r = p.raw("y_cp")
    y_cp_l = y_cp_r + p.raw("cp_diff")
    y_ap = p.raw("y_apex")
    for side, xl, xm, ycp, ydome in (
        ("r", -wt_r, xs - p.raw("med_r"), y_cp_r, y_cp_r - p.raw("dome_h")),
        ("l", wt_l, xs + p.raw("med_l"), y_cp_l, y_cp_r - p.raw("dome_h") + p.raw("dome_diff")),
    ):
        cx = (xl + xm) / 2
        ax = np.abs(xm - xl) / 2
        p.set(f"cx_{side}", cx)
        p.set(f"ax_{side}", ax)
        p.set(f"cy_{side}", ycp)
        p.set(f"ay_{side}", ycp - y_ap)
        # dome: y = ydome + k (x - pk)^2, equal to ycp at the lateral wall
        frac = p.raw("dome_pk")
        pk = xm + (xl - xm) * frac
        k = (ycp - ydome) / (xl - pk) ** 2
        p.set(f"dome_y_{side}", ydome)
        p.set(f"dome_pk_{side}", pk)
        p.set(f"dome_k_{side}", k)
    # heart ellipse: width = ctr * thoracic width, apex just above the left dome
    width = p.raw("ctr") * (wt_r + wt_l)
    phi = p.raw("heart_tilt")
    asp = p.raw("heart_aspect")
    a = (width / 2) / np.sqrt(np.cos(phi) ** 2 + (asp * np.sin(phi)) ** 2)
    b = asp * a
    hw = width / 2
    hc_x = xs - p.raw("heart_left") * width + hw
    off = (a**2 - b**2) * np.sin(phi) * np.cos(phi) / hw  # y offset of the rightmost point
    x_apex = hc_x + hw
    dome_at_apex = p.raw("dome_y_l") + p.raw("dome_k_l") * (x_apex - p.raw("dome_pk_l")) ** 2
    hc_y = np.minimum(dome_at_apex, y_cp_l) - off - p.raw("heart_gap")
    p.set("heart_x", hc_x)
    p.set("heart_y", hc_y)
    p.set("heart_a", a)
    p.set("heart_b", b)
    return p


def lung_metric(x: np.ndarray, y: np.ndarray, cx, ax, cy, ay) -> np.ndarray:
    """Superellipse metric of a lung: < 1 inside (above the base line ``cy``), 1 on the border."""
    u = (x - cx) / ax
    v = (y - cy) / ay
    return u * u * np.abs(u) + v * v


def dome_y(x: np.ndarray, y0, pk, k) -> np.ndarray:
    """The diaphragm dome height at ``x`` (lung lies where y < dome)."""
    return y0 + k * (x - pk) ** 2


def side_params(p: ParamBatch, side: np.ndarray) -> dict[str, np.ndarray]:
    """Lung/dome parameters of the chosen side per sample (0 = image left = patient right)."""
    s = np.asarray(side).reshape(-1, 1, 1).astype(bool)
    names = ("cx", "ax", "cy", "ay", "dome_y", "dome_pk", "dome_k", "wt")
    return {n: np.where(s, getattr(p, f"{n}_l"), getattr(p, f"{n}_r")) for n in names}


def lung_thickness(x, y, cx, ax, cy, ay, y0, pk, k) -> tuple[np.ndarray, np.ndarray]:
    """(thickness in [0, 1], metric) of one lung: thickest centrally, thin at the borders."""
    f = lung_metric(x, y, cx, ax, cy, ay)
    g = np.minimum((1.0 - f) * 1.6, (dome_y(x, y0, pk, k) - y) / 0.12)
    g = np.where(y < cy, g, -1.0)
    return np.sqrt(np.clip(g, 0.0, 1.0)), f


def ellipse_weight(x, y, cx, cy, a, b, phi, edge) -> np.ndarray:
    """Anti-aliased filled ellipse (1 inside, ramp over ``edge`` at the border)."""
    c, s = np.cos(phi), np.sin(phi)
    dx, dy = x - cx, y - cy
    u = (c * dx + s * dy) / a
    v = (-s * dx + c * dy) / b
    rho = np.sqrt(u * u + v * v)
    return smooth_edge((1.0 - rho) * b, edge)


def heart_floor(x: np.ndarray, y: np.ndarray, p: ParamBatch, edge: float) -> np.ndarray:
    """Weight in [0, 1] that cuts the cardiac silhouette off just below the diaphragm."""
    dome = np.where(
        x < p.xs,
        dome_y(x, p.dome_y_r, p.dome_pk_r, p.dome_k_r),
        dome_y(x, p.dome_y_l, p.dome_pk_l, p.dome_k_l),
    )
    return smooth_edge(dome + 0.03 - y, edge)


@dataclass
class AnatomyMaps:
    """Batched anatomy of B samples at S x S (all arrays (B, S, S) float32 unless noted).

    Attributes:
        x, y: patient-frame coordinates of each pixel.
        density: the anatomy's attenuation map (findings are added on top).
        thick_r, thick_l: lung thickness in [0, 1] of the image-left (patient right) and image-right lung.
        air: aerated-lung density subtracted from the trunk (``p.air * thickness * trunk``).
        markings: lung markings (vessels) density.
        heart_w: normal heart weight in [0, 1] (after truncation at the diaphragm).
        lungs: bool, lung fields (lung thickness > 0.2, outside the heart silhouette).
        heart: bool, the normal cardiac silhouette (``heart_w >= 0.5``).
        params: the sample parameters (:class:`ParamBatch`).
        edge: anti-aliasing width in patient units (about 1.5 pixels).
    """

    x: np.ndarray
    y: np.ndarray
    density: np.ndarray
    thick_r: np.ndarray
    thick_l: np.ndarray
    air: np.ndarray
    markings: np.ndarray
    heart_w: np.ndarray
    lungs: np.ndarray
    heart: np.ndarray
    params: ParamBatch
    edge: float

    @property
    def size(self) -> int:
        return self.x.shape[-1]

    def take(self, rows: np.ndarray) -> AnatomyMaps:
        """The sub-batch of the given rows."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                kw[f.name] = v[rows]
            elif isinstance(v, ParamBatch):
                kw[f.name] = v.take(rows)
            else:
                kw[f.name] = v
        return AnatomyMaps(**kw)


def patient_grid(p: ParamBatch, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient-frame (x, y) of every pixel, (B, S, S) each, after rotation, shift and zoom."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    gx = c[None, None, :] - p.tx
    gy = c[None, :, None] - p.ty
    ct, st = np.cos(p.rot), np.sin(p.rot)
    x = (ct * gx + st * gy) / p.zoom
    y = (-st * gx + ct * gy) / p.zoom
    return x.astype(np.float32), y.astype(np.float32)


def bandpass_ridges(noise: np.ndarray, freq: np.ndarray, size: int) -> np.ndarray:
    """Vessel-like ridge network from white noise (B, S, S): zero crossings of band-passed noise.

    ``freq`` is the centre frequency in cycles per patient unit (B, 1, 1).
    """
    spec = np.fft.rfft2(noise)
    fy = np.fft.fftfreq(size)[:, None] * size / 2.0
    fx = np.fft.rfftfreq(size)[None, :] * size / 2.0
    f = np.sqrt(fx**2 + fy**2)[None]
    filt = np.exp(-0.5 * (np.log((f + 1e-6) / freq) / 0.45) ** 2)
    band = np.fft.irfft2(spec * filt, s=(size, size)).astype(np.float32)
    band /= band.std(axis=(1, 2), keepdims=True) + 1e-6
    r = np.clip(1.0 - np.abs(band) / 0.45, 0.0, 1.0)
    return r * r


def render_anatomy(p: ParamBatch, texture: np.ndarray) -> AnatomyMaps:
    """Render the anatomy of a batch.

    Args:
        p: parameters from ``derive(ANATOMY_SPACE.draw(u))``, B samples.
        texture: (B, S, S) standard normal noise from each sample's anatomy stream.
    """
    size = texture.shape[-1]
    edge = 3.0 / size
    x, y = patient_grid(p, size)
    xs = p.xs

    # trunk soft tissue (cylinder chord), narrowing above the shoulders into the neck
    a_body = p.body_a
    above = np.clip((p.shoulder_y - y) / 0.38, 0.0, 1.0)
    a_y = 0.24 + (a_body - 0.24) * np.sqrt(np.clip(1.0 - above**2, 0.0, 1.0))
    body = p.thick * np.sqrt(np.sqrt(np.clip(1.0 - (x / a_y) ** 2, 0.0, 1.0)))

    # lungs
    thick_r, _ = lung_thickness(x, y, p.cx_r, p.ax_r, p.cy_r, p.ay_r, p.dome_y_r, p.dome_pk_r, p.dome_k_r)
    thick_l, _ = lung_thickness(x, y, p.cx_l, p.ax_l, p.cy_l, p.ay_l, p.dome_y_l, p.dome_pk_l, p.dome_k_l)
    thick = thick_r + thick_l
    air = p.air * thick * body

    # heart (truncated at the diaphragm) and aortic knob fill the space of the lung
    heart_w = ellipse_weight(x, y, p.heart_x, p.heart_y, p.heart_a, p.heart_b, p.heart_tilt, edge)
    heart_w = heart_w * heart_floor(x, y, p, edge)
    knob = ellipse_weight(x, y, xs + p.knob_x, p.knob_y, p.knob_r, p.knob_r, 0.0, edge)

    # hila and lung markings (vessels), denser near the hila
    d_hr = np.sqrt((x - (xs - 0.2)) ** 2 + (y + 0.12) ** 2)
    d_hl = np.sqrt((x - (xs + 0.2)) ** 2 + (y + 0.08) ** 2)
    d_h = np.minimum(d_hr, d_hl)
    hila = p.hilum_amp * np.exp(-0.5 * (d_h / 0.06) ** 2)
    ridges = bandpass_ridges(texture, p.mark_freq, size)
    markings = p.mark_amp * ridges * np.exp(-d_h / 0.45) * thick + hila * thick

    # posterior ribs: arcs rising from the spine and falling laterally; anterior ribs fainter
    right = x < xs
    t = np.where(right, (xs - x) / (xs + p.wt_r), (x - xs) / (p.wt_l - xs))
    curve = p.rib_curve * (0.50 * t * t - 0.22 * t) * (1.0 + 0.6 * (y - p.y_apex))
    n = (y - curve - (p.y_apex - 0.05)) / p.rib_spacing - p.rib_phase
    phase = n - np.floor(n)
    w = p.rib_width
    rib_prof = np.where(phase < w, np.sqrt(np.sqrt(np.abs(np.sin(np.pi * phase / w)))), 0.0)
    rib_keep = (n > 0) & (n < 10.6)
    fade = smooth_edge(1.12 - t, 0.06) * smooth_edge(t - 0.05, 0.08)
    below = np.maximum(
        y - dome_y(x, p.dome_y_r, p.dome_pk_r, p.dome_k_r), y - dome_y(x, p.dome_y_l, p.dome_pk_l, p.dome_k_l)
    )
    fade = fade * (0.35 + 0.65 * smooth_edge(0.12 - below, 0.12))  # fainter over the abdomen
    ribs = p.rib_amp * rib_prof * rib_keep * fade
    na = (y - 0.30 * (1.0 - t) - (p.y_apex - 0.05)) / (1.1 * p.rib_spacing) - p.rib_phase
    pha = na - np.floor(na)
    ant = np.where(pha < 0.5, np.sin(np.pi * pha / 0.5), 0.0) * ((na > 0.5) & (na < 6.5))
    ribs = ribs + 0.35 * p.rib_amp * ant * smooth_edge(t - 0.3, 0.15) * smooth_edge(1.05 - t, 0.05)

    # clavicles
    tc = (np.abs(x - xs) - 0.04) / 0.62
    ycl = p.clav_y - p.clav_slope * tc + 0.045 * np.sin(np.pi * np.clip(tc, 0, 1))
    dcl = np.abs(y - ycl) / (0.028 + 0.008 * np.clip(tc, 0, 1))
    clav = p.clav_amp * np.sqrt(np.clip(1.0 - dcl**2, 0.0, 1.0)) * smooth_edge(tc, 0.04) * smooth_edge(1.0 - tc, 0.08)

    # spine with vertebral bodies and darker disc spaces; trachea (air column) above the carina
    dxs = (x - xs) / 0.062
    vb = np.sqrt(np.clip(1.0 - dxs**2, 0.0, 1.0))
    ph = (y / 0.105 + p.spine_phase) % 1.0
    disc = 0.72 + 0.28 * np.clip(np.sin(np.pi * ph / 0.82) * 4.0, 0.0, 1.0) * (ph < 0.82)
    ped = np.exp(-0.5 * ((np.abs(dxs) - 0.75) / 0.12) ** 2) * np.clip(np.sin(np.pi * ph) * 2 - 0.6, 0, 1)
    spine = p.spine_amp * (vb * disc + 0.35 * ped)
    dxt = (x - xs - p.trachea_dev) / 0.036
    trachea = 0.22 * np.sqrt(np.clip(1.0 - dxt**2, 0.0, 1.0)) * smooth_edge(p.carina - y, 0.03)

    # gastric bubble under the left dome (present in ~70%)
    has_bubble = (p.bubble < 0.7).astype(np.float32)
    bub_y = p.dome_y_l + 0.05 + p.bubble_r
    bubble = has_bubble * 0.25 * ellipse_weight(
        x, y, xs + 0.45 * p.wt_l, bub_y, 1.5 * p.bubble_r, p.bubble_r, 0.0, edge
    )

    density = (
        body
        - air
        + p.parenchyma * thick
        + markings
        + heart_w * (p.heart_dens + air - p.parenchyma * thick)
        + knob * (0.03 + air - p.parenchyma * thick)
        + ribs
        + clav
        + spine
        - trachea
        - bubble
    ).astype(np.float32)

    heart = heart_w >= 0.5
    lungs = (thick > 0.2) & ~heart & (knob < 0.5)
    return AnatomyMaps(
        x=x,
        y=y,
        density=density,
        thick_r=thick_r.astype(np.float32),
        thick_l=thick_l.astype(np.float32),
        air=air.astype(np.float32),
        markings=markings.astype(np.float32),
        heart_w=heart_w.astype(np.float32),
        lungs=lungs,
        heart=heart,
        params=p,
        edge=edge,
    )
