"""The feature networks of the field's evaluation audits, from local weight files.

Stein et al. (NeurIPS 2023) found Inception features under-rate modern generators and
recommend DINOv2 ViT-L/14 (ViT-B/14 for tracking during training); CMMD uses CLIP
ViT-B/32; Woodland et al. (MICCAI 2024) found SwAV's ResNet-50 closest to experts on
medical images. Each network is built from the architecture code of a well-kept package
(timm for the DINOv2 ViTs, torchvision for the ResNet-50, open_clip for CLIP) and loaded
from a weights file the user provides, checked against its SHA-256 when one is given;
nothing is downloaded. A missing file or a wrong hash makes the space unavailable, with
the reason. Images are resized to 224 px (bicubic, antialiased) and normalised as each
network was trained; features are DINOv2's class token, the ResNet's pooled 2,048
features, CLIP's image embedding. docs/metrics.md says where each file comes from.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from fetal_dcgan.metrics.errors import MetricUnavailable
from fetal_dcgan.rules import Rule, or_null, setting

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
INPUT_SIZE = 224


def _sha256_hex() -> Rule:
    return (lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v)), (
        "64 hexadecimal digits"
    )


@dataclass
class WeightsFile:
    path: Optional[str] = setting(None, help="the weights file; null: the space is unavailable")
    sha256: Optional[str] = setting(
        None, or_null(_sha256_hex()), "<sha256sum of the file>", "the file's SHA-256, checked; null: not checked"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(space: str, weights: WeightsFile) -> tuple[Path, str]:
    """The weights file of ``space`` and its SHA-256, or MetricUnavailable saying why not."""
    key = f"metrics.features.{space.replace('-', '_')}"
    if not weights.path:
        raise MetricUnavailable(
            f"{space} features need their weights: set {key}.path (docs/metrics.md, feature spaces)"
        )
    path = Path(weights.path).expanduser()
    if not path.is_file():
        raise MetricUnavailable(f"{space} weights not found at {path}: set {key}.path to the downloaded file")
    digest = file_sha256(path)
    if weights.sha256 and digest != weights.sha256.lower():
        raise MetricUnavailable(
            f"{space} weights {path} have SHA-256 {digest}, not the expected {weights.sha256.lower()}: "
            f"a different or damaged file; download it again or correct {key}.sha256"
        )
    return path, digest


def _is_torchscript(path: Path) -> bool:
    """OpenAI's CLIP files are TorchScript archives, which ``torch.load`` refuses with weights_only."""
    return zipfile.is_zipfile(path) and any(
        name.endswith("/constants.pkl") for name in zipfile.ZipFile(path).namelist()
    )


def _state_dict(path: Path) -> dict:
    if _is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            return torch.jit.load(path, map_location="cpu").state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state


def _dinov2(size: str) -> Callable[[dict], nn.Module]:
    def build(state: dict) -> nn.Module:
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        model = timm.create_model(f"vit_{size}_patch14_dinov2", pretrained=False, num_classes=0, dynamic_img_size=True)
        model.load_state_dict(checkpoint_filter_fn(state, model))  # Meta's keys or timm's
        return model

    return build


def _swav_resnet50(state: dict) -> nn.Module:
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    model.fc = nn.Identity()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith(("fc.", "projection_head.", "prototypes."))}
    )
    return model


def _clip_vitb32(state: dict) -> nn.Module:
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    model.visual.load_state_dict(visual or state)  # the whole model's state or the image tower's
    return model.visual


@dataclass(frozen=True)
class Pretrained:
    build: Callable[[dict], nn.Module]
    normalisation: tuple[tuple[float, ...], tuple[float, ...]]
    dim: int
    #: the official file's SHA-256 where its publisher states one
    published_sha256: Optional[str] = None


#: Spaces by name: the network, its input normalisation, its feature dimension and, where
#: published, the official file's hash (OpenAI's CLIP download path is the file's SHA-256,
#: which their own loader checks).
PRETRAINED = {
    "dinov2-vitb14": Pretrained(_dinov2("base"), IMAGENET, 768),
    "dinov2-vitl14": Pretrained(_dinov2("large"), IMAGENET, 1024),
    "swav-resnet50": Pretrained(_swav_resnet50, IMAGENET, 2048),
    "clip-vitb32": Pretrained(
        _clip_vitb32, OPENAI_CLIP, 512, "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
    ),
}


class PretrainedFeatures(nn.Module):
    """uint8 (N, 3, H, W) -> (N, dim): resized to 224 px, normalised, through the network."""

    def __init__(self, space: str, weights: WeightsFile):
        super().__init__()
        path, digest = verified_file(space, weights)
        spec = PRETRAINED[space]
        try:
            self.net = spec.build(_state_dict(path)).eval()
        except (RuntimeError, KeyError, ValueError) as exc:  # not this architecture's weights
            raise MetricUnavailable(f"{space} weights {path} do not fit the network: {str(exc)[:300]}") from exc
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in spec.normalisation)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.cache_key = f"{space}:{digest}"
        official = ", the published file" if digest == spec.published_sha256 else ""
        self.label = f"{space} (weights {digest[:12]}{official})"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(
            images.float() / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True, align_corners=False
        )
        return self.net((x - self.mean) / self.std)
