"""GlyphMix on batched tensors, on whatever device the batch is on (see ``docs/method.md``).

Shapes: images ``N x C x H x W``; each target map ``N x [C x] H/s x W/s`` at its declared stride ``s``; masks
``N x H x W`` at the input resolution (0/1). Boxes are ``(x0, y0, x1, y1)`` in input pixels, ``x1``/``y1``
exclusive.

1. Text-balanced intra-domain mixing ``A^T``: the real batch is permuted (a random cycle, so no image is its
   own partner); image ``i`` gets ONE rectangle of its partner ``j = perm[i]`` pasted at the same coordinates, ``M_T * X(j) + (1 - M_T) * X(i)``; targets
   and weight maps are mixed with the same ``M_T``. The rectangle is the one of ``num_candidates`` random
   boxes (area ``min_area..max_area`` of the image, any aspect) that holds the most text of the partner's
   pseudo-targets (in input pixels, summed over the detector's levels) (``box_selection="text_balanced"``), or a random one (``"random"``).
2. Graffiti-like inter-domain mixing ``A^G``: the strokes of synthetic image ``i`` (its glyph mask ``M_G``)
   are pasted onto mixed real image ``i`` at their own positions with their own colours:
   ``M_G * X_l + (1 - M_G) * X``. Targets: ``M * Y_l + (1 - M) * Y`` with ``M`` chosen by ``label_mask``:
   ``"region"`` (default; the synthetic targets' ``text_region``: whole text instances and the margin the
   targets need), ``"stroke"`` (``M = M_G``, as the paper writes), or ``"ignore"`` (``M = M_G``, and the
   non-stroke pixels of the text region get weight 0 in every weight map).

Target maps are mixed by their declared kind and stride (the detector's ``TargetSpec``), never by name:
every map is pasted at its own stride with the mask brought to that stride (a box by the centres of the map's
pixels, a glyph or region mask by sampling them), without full-resolution copies; a pixel takes the whole value
of the side that owns it (no blending, so binary maps stay binary and regression values are never averaged);
instance ids pasted from another image are offset by the base image's largest id, so instances stay distinct;
with ``label_mask="ignore"`` the weight maps get 0 on non-stroke pixels of the synthetic text region. Nothing
here knows a detector.
"""

from __future__ import annotations

from dataclasses import dataclass
import torch

from ..models.base import MapKind, TargetSpec

BOX_SELECTIONS = ("text_balanced", "random")
LABEL_MASKS = ("region", "stroke", "ignore")


@dataclass
class GlyphMixConfig:
    """Every GlyphMix choice (defaults: ``docs/method.md``).

    Args:
        intra_domain: apply text-balanced real-real mixing ``A^T``.
        inter_domain: apply graffiti-like synthetic-real mixing ``A^G``.
        num_candidates: candidate boxes per image for ``A^T``.
        min_area / max_area: candidate box area as a fraction of the image.
        box_selection: ``"text_balanced"`` (most partner text) or ``"random"``.
        label_mask: ``"region"``, ``"stroke"`` or ``"ignore"`` (how pasted glyphs are labelled).
        char_mode: synthetic targets from character quads (each character an instance) instead of words.
    """

    intra_domain: bool = True
    inter_domain: bool = True
    num_candidates: int = 8
    min_area: float = 0.1
    max_area: float = 0.5
    box_selection: str = "text_balanced"
    label_mask: str = "region"
    char_mode: bool = True

    def __post_init__(self) -> None:
        if self.box_selection not in BOX_SELECTIONS:
            raise ValueError(f"box_selection must be one of {BOX_SELECTIONS}, got {self.box_selection!r}")
        if self.label_mask not in LABEL_MASKS:
            raise ValueError(f"label_mask must be one of {LABEL_MASKS}, got {self.label_mask!r}")
        if not 0 < self.min_area <= self.max_area <= 1:
            raise ValueError(f"need 0 < min_area <= max_area <= 1, got {self.min_area}, {self.max_area}")
        if self.num_candidates < 1:
            raise ValueError("num_candidates must be >= 1")


def sample_boxes(n: int, k: int, height: int, width: int, min_area: float, max_area: float,
                 generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n x k x 4`` int64 random boxes: area fraction ``a ~ U(min_area, max_area)``, width fraction
    ``~ U(a, 1)`` (so the height fraction ``a / width`` is at most 1: every aspect), uniform position."""
    u = torch.rand(n, k, 4, generator=generator).to(device)
    area = min_area + (max_area - min_area) * u[..., 0]
    fw = area + (1 - area) * u[..., 1]
    bw = (fw * width).round().clamp(1, width)
    bh = (area / fw * height).round().clamp(1, height)
    x0 = (u[..., 2] * (width - bw + 1)).floor().clamp(max=width - bw)
    y0 = (u[..., 3] * (height - bh + 1)).floor().clamp(max=height - bh)
    return torch.stack([x0, y0, x0 + bw, y0 + bh], -1).long()


def box_sums(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Sum of ``maps`` (``N x H x W``) inside each of ``boxes`` (``N x K x 4``) -> ``N x K``, with one summed-area
    table per map."""
    n = maps.shape[0]
    table = torch.nn.functional.pad(maps.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
    flat = table.reshape(n, -1)
    w1 = table.shape[2]

    def at(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return flat.gather(1, y * w1 + x)

    x0, y0, x1, y1 = boxes.unbind(-1)
    return (at(x1, y1) - at(x0, y1) - at(x1, y0) + at(x0, y0)).to(maps.dtype)


def partner_text_area(targets: dict[str, torch.Tensor], permutation: torch.Tensor, candidates: torch.Tensor,
                      spec: TargetSpec) -> torch.Tensor:
    """``N x K``: the partner's text inside each candidate box (``N x K x 4``, input pixels), in input pixels,
    summed over the detector's levels (each text map counted at its stride, a map pixel weighing ``stride^2``)."""
    area = torch.zeros(candidates.shape[:2], dtype=torch.float64, device=candidates.device)
    for text, _ in spec.levels:
        s = text.stride
        scaled = torch.cat([candidates[..., :2] // s, -(-candidates[..., 2:] // s)], -1)
        area += box_sums((targets[text.name][permutation] > 0.5).double(), scaled) * s * s
    return area


def select_boxes(scores: torch.Tensor, candidates: torch.Tensor, mode: str,
                 generator: torch.Generator, return_index: bool = False) -> torch.Tensor:
    """One box per image (``N x 4``, or its index ``N`` with ``return_index``) out of ``candidates``
    (``N x K x 4``): the one with the highest ``scores`` (``N x K``, e.g. ``partner_text_area``) or a random
    one."""
    n, k = candidates.shape[:2]
    if mode == "text_balanced":
        index = scores.argmax(1)
    elif mode == "random":
        index = torch.randint(k, (n,), generator=generator).to(candidates.device)
    else:
        raise ValueError(f"box selection must be one of {BOX_SELECTIONS}, got {mode!r}")
    return index if return_index else candidates[torch.arange(n, device=candidates.device), index]


def box_masks(boxes: torch.Tensor, height: int, width: int, dtype: torch.dtype = torch.float32, stride: int = 1
              ) -> torch.Tensor:
    """``N x H x W`` masks of a map at ``stride`` (``H x W`` its size), 1 on the pixels whose centre lies inside
    each box of ``boxes`` (``N x 4``, input pixels); at stride 1 exactly the box's pixels."""
    ys = (torch.arange(height, device=boxes.device).view(1, -1, 1) * stride + (stride - 1) / 2)
    xs = (torch.arange(width, device=boxes.device).view(1, 1, -1) * stride + (stride - 1) / 2)
    x0, y0, x1, y1 = (b.view(-1, 1, 1) for b in boxes.unbind(-1))
    return ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).to(dtype)


def at_stride(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """An ``N x H x W`` input-resolution mask seen by a map at ``stride``: the value at each map pixel's centre."""
    return mask if stride == 1 else mask[:, stride // 2::stride, stride // 2::stride]


def paste_map(base: torch.Tensor, top: torch.Tensor, mask: torch.Tensor, kind: MapKind) -> torch.Tensor:
    """One target map mixed by its kind: where ``mask`` (``N x h x w``; broadcast over a channel dimension) is on,
    the pixel takes ``top``'s whole value, elsewhere ``base``'s. Instance ids of ``top`` are offset by each base
    image's largest id (0 stays background), so pasted instances never merge with the base's; ids are int32 then
    (``build_targets`` gives int16, which two images' ids together could overflow)."""
    on = mask > 0.5
    while on.dim() < base.dim():
        on = on.unsqueeze(1)
    if kind is MapKind.INSTANCE:
        base = base.int()
    top = top.to(base.dtype)
    if kind is MapKind.INSTANCE:
        offset = base.reshape(base.shape[0], -1).amax(1).view(-1, *[1] * (base.dim() - 1))
        top = torch.where(top > 0, top + offset, torch.zeros_like(top))
    return torch.where(on, top, base)


def paste(base: torch.Tensor, top: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * top + (1 - mask) * base``; ``mask`` ``N x H x W`` broadcasts over a channel dimension."""
    m = mask.to(base.dtype)
    if base.dim() == 4:
        m = m[:, None]
    return torch.lerp(base, top.to(base.dtype), m)


def intra_domain_mix(images: torch.Tensor, targets: dict[str, torch.Tensor], permutation: torch.Tensor,
                     boxes: torch.Tensor, spec: TargetSpec) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``A^T``: inside image ``i``'s box, image ``perm[i]``'s pixels and targets (each map at its stride, by its
    kind); ``M_T * X[perm] + (1 - M_T) * X``."""
    h, w = images.shape[-2:]
    mixed = paste(images, images[permutation], box_masks(boxes, h, w))
    out = {}
    for m in spec.maps:
        v = targets[m.name]
        out[m.name] = paste_map(v, v[permutation], box_masks(boxes, *v.shape[-2:], stride=m.stride), m.kind)
    return mixed, out


def inter_domain_mix(images: torch.Tensor, targets: dict[str, torch.Tensor], synthetic_images: torch.Tensor,
                     synthetic_targets: dict[str, torch.Tensor], glyph: torch.Tensor, region: torch.Tensor,
                     label_mask: str, spec: TargetSpec) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``A^G``: strokes (``glyph``) of the synthetic images on the real ones; targets mixed by ``label_mask``
    (``region``: with ``region``; ``stroke``: with ``glyph``; ``ignore``: with ``glyph`` and the weight maps 0
    on ``region`` pixels that are not strokes), each map at its stride, by its kind."""
    if label_mask not in LABEL_MASKS:
        raise ValueError(f"label_mask must be one of {LABEL_MASKS}, got {label_mask!r}")
    mixed = paste(images, synthetic_images, glyph)
    label = region if label_mask == "region" else glyph
    keep = 1 - region.float() * (1 - glyph.float())
    out = {}
    for m in spec.maps:
        v = paste_map(targets[m.name], synthetic_targets[m.name], at_stride(label, m.stride), m.kind)
        if label_mask == "ignore" and m.kind is MapKind.WEIGHT:
            v = v * at_stride(keep, m.stride).to(v.dtype)
        out[m.name] = v
    return mixed, out


@dataclass
class MixResult:
    """A GlyphMix batch: ``images`` ``N x 3 x H x W``, ``targets`` (``N x H x W`` maps), and what made it
    (``boxes`` ``N x 4`` and ``permutation`` of ``A^T``, or ``None``)."""

    images: torch.Tensor
    targets: dict[str, torch.Tensor]
    boxes: torch.Tensor | None
    permutation: torch.Tensor | None


def glyphmix(real_images: torch.Tensor, pseudo_targets: dict[str, torch.Tensor], synthetic_images: torch.Tensor,
             synthetic_targets: dict[str, torch.Tensor], glyph: torch.Tensor, region: torch.Tensor,
             config: GlyphMixConfig, spec: TargetSpec, generator: torch.Generator) -> MixResult:
    """The full mix ``A^G(A^T(X_u), X_l)`` of one batch (real first, glyphs on top).

    ``real_images``: the strong views; ``pseudo_targets``: the teacher's on the weak views; the synthetic
    batch has the same ``N`` (image ``i`` gets synthetic image ``i``'s glyphs); ``spec`` is the detector's
    declaration of its target maps. Random draws (permutation, boxes) come from ``generator`` (a CPU generator:
    the same draws on every device).
    """
    images, targets = real_images, pseudo_targets
    boxes = permutation = None
    n, _, h, w = images.shape
    if config.intra_domain and n > 1:
        order = torch.randperm(n, generator=generator)  # partners along a random cycle: nobody pairs with itself
        permutation = torch.empty_like(order)
        permutation[order] = order.roll(-1)
        permutation = permutation.to(images.device)
        candidates = sample_boxes(n, config.num_candidates, h, w, config.min_area, config.max_area, generator,
                                  images.device)
        index = select_boxes(partner_text_area(targets, permutation, candidates, spec), candidates,
                             config.box_selection, generator, return_index=True)
        boxes = candidates[torch.arange(n, device=candidates.device), index]
        images, targets = intra_domain_mix(images, targets, permutation, boxes, spec)
    if config.inter_domain:
        images, targets = inter_domain_mix(images, targets, synthetic_images, synthetic_targets, glyph, region,
                                           config.label_mask, spec)
    return MixResult(images, targets, boxes, permutation)


__all__ = ["GlyphMixConfig", "MixResult", "glyphmix", "sample_boxes", "box_sums", "select_boxes", "partner_text_area", "box_masks",
           "at_stride", "paste", "paste_map", "intra_domain_mix", "inter_domain_mix", "BOX_SELECTIONS", "LABEL_MASKS"]
