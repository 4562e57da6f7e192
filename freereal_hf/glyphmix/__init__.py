"""GlyphMix: glyph masks of synthetic text (a cached ``datasets.map`` step), the weak/strong views of real
images and the synthetic samples (``with_transform``), and the batched mixing on tensors."""

from .masks import GLYPH_COLUMN, add_glyph_masks, decode_mask, encode_mask, glyph_mask
from .mixing import GlyphMixConfig, MixResult, glyphmix, inter_domain_mix, intra_domain_mix
from .preview import glyphmix_grid
from .views import RealViews, StrongAugment, SyntheticSample

__all__ = ["glyph_mask", "add_glyph_masks", "encode_mask", "decode_mask", "GLYPH_COLUMN", "GlyphMixConfig",
           "MixResult", "glyphmix", "intra_domain_mix", "inter_domain_mix", "RealViews", "StrongAugment",
           "SyntheticSample", "glyphmix_grid"]
