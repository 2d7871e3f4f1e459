"""Procedural fetal-head ultrasound phantom: the built-in dataset that needs no download.

Each image mimics a trans-thalamic B-mode scan: a fan-shaped field of view on black,
multiplicative speckle, depth attenuation, an anechoic amniotic pool, a bright elliptical
skull (brightest where the beam meets it head-on) with an acoustic shadow behind it, a
midline echo, the cavum septi pellucidi and the thalami. Every image is a pure function of
(seed, index, parameters), so the dataset is reproducible bit for bit.

Each image comes with its head annotation in HC18's format: the skull's ellipse (the
centre line of the bright ring) as a one-pixel outline ``phantom_NNNN_Annotation.png``, and
``phantom_pixel_size_and_HC.csv`` with the pixel size and the true head circumference in
mm (HC18's columns), so the head-measurement chain runs offline on the default data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from fetal_dcgan.imaging.ellipse import ramanujan

#: Bump whenever the drawing code or the files written change in a way ``PhantomSpec`` does
#: not capture (its fields, the drawing ranges included, are in the cache key already), so
#: cached phantoms are regenerated; docs/data.md records each version.
PHANTOM_VERSION = 2

Range = tuple[float, float]


@dataclass(frozen=True)
class Drawing:
    """The ranges each image's random draws come from (uniform; shares of the image's
    height or width, of the skull's semi-major axis a, degrees or radians as named)."""

    apex_depth: Range = (0.08, 0.16)  # the fan's apex above the top edge, a share of the height
    apex_shift: Range = (-0.03, 0.03)  # its sideways offset, a share of the width
    half_angle_deg: Range = (30.0, 40.0)  # half the fan's opening
    far_depth: Range = (0.93, 0.99)  # the fan's far edge below the apex, a share of the height
    head_cy: Range = (0.45, 0.62)  # the skull's centre, a share of the height ...
    head_cx_shift: Range = (-0.12, 0.12)  # ... and its offset from the middle, a share of the width
    head_a: Range = (0.22, 0.36)  # the semi-major axis, a share of the height
    head_axis_ratio: Range = (0.72, 0.86)  # b / a
    head_angle: Range = (-0.5, 0.5)  # the major axis from horizontal (radians)
    fluid_dy: Range = (-0.1, 0.1)  # the amniotic pool's offset across ... (shares of a)
    fluid_dx: Range = (-0.3, 0.3)  # ... and along the head
    fluid_angle: Range = (-0.4, 0.4)  # its tilt against the skull's (radians)
    skull_thickness: Range = (0.045, 0.07)  # the bright ring's width (in the ellipse's radius)
    shadow: Range = (0.3, 0.55)  # the acoustic shadow's depth behind the skull
    attenuation: Range = (1.0, 1.8)  # depth attenuation's exponent
    gain: Range = (0.8, 1.2)  # overall brightness


@dataclass(frozen=True)
class PhantomSpec:
    """Parameters that fully determine a phantom dataset."""

    n_images: int = 999
    seed: int = 0
    height: int = 270
    width: int = 400
    field_mm: float = 160.0  # the image's width in mm: 0.4 mm pixels at 400 px, HCs of 130-230 mm like HC18's
    first_index: int = 0  # the test split continues the pool: images first_index .. first_index + n_images - 1
    drawing: Drawing = Drawing()

    @property
    def pixel_mm(self) -> float:
        return self.field_mm / self.width

    def key(self) -> str:
        payload = json.dumps({"version": PHANTOM_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _ellipse_coords(yy, xx, cy, cx, a, b, theta):
    """Coordinates of every pixel in the frame of an ellipse (u along the major axis)."""
    c, s = np.cos(theta), np.sin(theta)
    dx, dy = xx - cx, yy - cy
    u = (dx * c + dy * s) / a
    v = (-dx * s + dy * c) / b
    return u, v


@dataclass(frozen=True)
class Head:
    """The skull ellipse of one image, in pixels (y down): centre, semi-axes along and across
    the major axis, and the major axis's angle from the x axis (radians, towards +y)."""

    cx: float
    cy: float
    a: float
    b: float
    theta: float

    def outline(self, height: int, width: int) -> np.ndarray:
        """A closed one-pixel outline of the ellipse as a bool mask (HC18's annotation style)."""
        from skimage.draw import polygon_perimeter

        t = np.linspace(0, 2 * np.pi, 4 * int(self.a + self.b) + 16, endpoint=False)
        x = self.cx + self.a * np.cos(t) * np.cos(self.theta) - self.b * np.sin(t) * np.sin(self.theta)
        y = self.cy + self.a * np.cos(t) * np.sin(self.theta) + self.b * np.sin(t) * np.cos(self.theta)
        rows, cols = polygon_perimeter(np.round(y), np.round(x), shape=(height, width), clip=True)
        mask = np.zeros((height, width), bool)
        mask[rows, cols] = True
        return mask


def _field_of_view(
    rng: np.random.Generator, d: Drawing, yy: np.ndarray, xx: np.ndarray, height: int, width: int
) -> dict:
    """The fan-shaped field of view: apex above the top edge, opening 60-80 degrees."""
    apex_y = -height * rng.uniform(*d.apex_depth)
    apex_x = width / 2 + rng.uniform(*d.apex_shift) * width
    half_angle = np.deg2rad(rng.uniform(*d.half_angle_deg))
    r = np.hypot(xx - apex_x, yy - apex_y)
    phi = np.arctan2(xx - apex_x, yy - apex_y)
    r_near = -apex_y + height * 0.04
    r_far = -apex_y + height * rng.uniform(*d.far_depth)
    return {
        "apex_x": apex_x,
        "apex_y": apex_y,
        "r": r,
        "phi": phi,
        "fan": (np.abs(phi) < half_angle) & (r > r_near) & (r < r_far),
        "depth": np.clip((r - r_near) / (r_far - r_near), 0, 1),
    }


def _tissue(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Tissue echogenicity before speckle: a smooth random texture."""
    coarse = rng.standard_normal((height // 16 + 2, width // 16 + 2)).astype(np.float32)
    texture = ndimage.zoom(coarse, 16, order=3)[:height, :width]
    return 0.42 + 0.12 * texture


def _place_head(rng: np.random.Generator, d: Drawing, height: int, width: int) -> Head:
    """Head placement and shape (occipito-frontal axis mostly horizontal, like HC18)."""
    cy = height * rng.uniform(*d.head_cy)
    cx = width / 2 + rng.uniform(*d.head_cx_shift) * width
    a = height * rng.uniform(*d.head_a)
    b = a * rng.uniform(*d.head_axis_ratio)
    return Head(cx, cy, a, b, rng.uniform(*d.head_angle))


def _draw_head(
    rng: np.random.Generator, d: Drawing, echo: np.ndarray, head: Head, yy, xx, phi
) -> tuple[np.ndarray, np.ndarray]:
    """Amniotic fluid, brain, skull, midline, cavum septi pellucidi and thalami; returns the
    echo map and each pixel's radius in the skull ellipse's frame (1 on the skull)."""
    cx, cy, a, b, theta = head.cx, head.cy, head.a, head.b, head.theta
    u, v = _ellipse_coords(yy, xx, cy, cx, a, b, theta)
    rho = np.sqrt(u * u + v * v)
    # Amniotic fluid: an anechoic pool around part of the head.
    fluid_u, fluid_v = _ellipse_coords(
        yy,
        xx,
        cy + rng.uniform(*d.fluid_dy) * a,
        cx + rng.uniform(*d.fluid_dx) * a,
        a * 1.45,
        b * 1.35,
        theta + rng.uniform(*d.fluid_angle),
    )
    echo = np.where(np.sqrt(fluid_u**2 + fluid_v**2) < 1, 0.06, echo)
    # Brain parenchyma: darker and smoother than surrounding tissue.
    inside = rho < 0.97
    echo = np.where(inside, 0.16 + 0.04 * np.sin(6 * u + 3 * v), echo)
    # Skull: thick bright ring, strongest where the beam is perpendicular to it (specular).
    thickness = rng.uniform(*d.skull_thickness)
    ring = np.exp(-0.5 * ((rho - 1.0) / thickness) ** 2)
    normal_angle = np.arctan2(v / b, u / a) + theta
    specular = 0.45 + 0.55 * np.abs(np.sin(normal_angle + phi)) ** 2
    echo = echo + 1.6 * ring * specular
    # Midline echo (falx), cavum septi pellucidi and thalami.
    midline = np.exp(-0.5 * (v / 0.025) ** 2) * (np.abs(u) < 0.85)
    echo = echo + 0.5 * midline * inside
    csp = (((u + 0.35) / 0.12) ** 2 + (v / 0.07) ** 2) < 1
    echo = np.where(csp, 0.05, echo)
    for side in (-1, 1):
        thal = (((u - 0.05) / 0.2) ** 2 + ((v - side * 0.17) / 0.12) ** 2) < 1
        echo = np.where(thal & inside, 0.34, echo)
    return echo, rho


def _shadow(
    rng: np.random.Generator, d: Drawing, echo: np.ndarray, head: Head, view: dict, rho: np.ndarray, scale: float
) -> np.ndarray:
    """Acoustic shadow: beams that cross the skull are attenuated beyond its far wall."""
    head_dist = np.hypot(head.cx - view["apex_x"], head.cy - view["apex_y"])
    head_phi = np.arctan2(head.cx - view["apex_x"], head.cy - view["apex_y"])
    half_span = np.arcsin(min(0.95, 0.8 * (head.a + head.b) / 2 / head_dist))
    in_beam = 1 / (1 + np.exp((np.abs(view["phi"] - head_phi) - half_span) / 0.02))
    beyond = 1 / (1 + np.exp(-(view["r"] - head_dist - 0.6 * head.b) / (4 * scale)))
    return echo * (1 - rng.uniform(*d.shadow) * in_beam * beyond * (rho > 0.97))


def _b_mode(rng: np.random.Generator, d: Drawing, echo: np.ndarray, view: dict, scale: float) -> np.ndarray:
    """Speckle (the magnitude of smoothed complex Gaussian noise, elongated laterally), depth
    attenuation with imperfect time-gain compensation, log compression, 8 bits."""
    height, width = echo.shape
    noise = rng.standard_normal((2, height, width)).astype(np.float32)
    sigma = (0.8 * scale, 1.6 * scale)
    speckle = np.hypot(ndimage.gaussian_filter(noise[0], sigma), ndimage.gaussian_filter(noise[1], sigma))
    speckle /= speckle.mean()
    depth = view["depth"]
    attenuation = np.exp(-rng.uniform(*d.attenuation) * depth) * (0.8 + 0.4 * depth)
    envelope = np.clip(echo, 0, None) * speckle * attenuation * rng.uniform(*d.gain)
    bmode = np.log1p(12 * envelope) / np.log1p(12 * 2.2)
    bmode = np.where(view["fan"], bmode, 0.0)
    return (np.clip(bmode, 0, 1) * 255).astype(np.uint8)


def render_with_head(
    rng: np.random.Generator, height: int, width: int, d: Drawing = Drawing()
) -> tuple[np.ndarray, Head]:
    """Draw one phantom image as an 8-bit grayscale array of shape (height, width), and the
    skull ellipse it was drawn with. The steps draw from ``rng`` in a fixed order: changing
    it changes every image (bump ``PHANTOM_VERSION``)."""
    scale = height / 270.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    view = _field_of_view(rng, d, yy, xx, height, width)
    echo = _tissue(rng, height, width)
    head = _place_head(rng, d, height, width)
    echo, rho = _draw_head(rng, d, echo, head, yy, xx, view["phi"])
    echo = _shadow(rng, d, echo, head, view, rho, scale)
    image = _b_mode(rng, d, echo, view, scale)
    return image, Head(*(float(x) for x in (head.cx, head.cy, head.a, head.b, head.theta)))


def render_image(spec: PhantomSpec, index: int) -> np.ndarray:
    """Image ``index`` of the dataset described by ``spec`` (independent of the others)."""
    return render_image_and_head(spec, index)[0]


def render_image_and_head(spec: PhantomSpec, index: int) -> tuple[np.ndarray, Head]:
    return render_with_head(np.random.default_rng([spec.seed, index]), spec.height, spec.width, spec.drawing)


#: HC18's annotation names and CSV columns, which the phantom writes too.
ANNOTATION_SUFFIX = "_Annotation.png"
HC_CSV_COLUMNS = ("filename", "pixel size(mm)", "head circumference (mm)")
PHANTOM_CSV = "phantom_pixel_size_and_HC.csv"


def materialise(spec: PhantomSpec, cache_dir: str | os.PathLike, workers: int | None = None) -> list[Path]:
    """Write the phantom as PNG files once and return their paths.

    The folder is named after a hash of the parameters and generator version, and is built
    in a temporary folder renamed when complete, so an interrupted build is never reused.
    """
    root = Path(cache_dir).expanduser() / "phantom" / spec.key()
    indices = range(spec.first_index, spec.first_index + spec.n_images)
    names = [f"phantom_{i:04d}.png" for i in indices]
    if not root.is_dir():
        tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

        def write(i: int) -> float:
            name = names[i - spec.first_index]
            image, head = render_image_and_head(spec, i)
            Image.fromarray(image).save(tmp / name, compress_level=1)
            outline = head.outline(spec.height, spec.width).astype(np.uint8) * 255
            Image.fromarray(outline).save(tmp / name.replace(".png", ANNOTATION_SUFFIX), compress_level=1)
            return float(ramanujan(head.a, head.b)) * spec.pixel_mm

        with ThreadPoolExecutor(workers or os.cpu_count()) as pool:
            hc = list(pool.map(write, indices))
        rows = [",".join(HC_CSV_COLUMNS)] + [f"{n},{spec.pixel_mm:.6f},{h:.4f}" for n, h in zip(names, hc)]
        (tmp / PHANTOM_CSV).write_text("\n".join(rows) + "\n")
        (tmp / "spec.json").write_text(json.dumps({"version": PHANTOM_VERSION, **asdict(spec)}, indent=2))
        try:
            tmp.rename(root)
        except OSError:  # another process finished first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return [root / name for name in names]
