"""The detectors. Each lives in its own folder with the same files; this module lists them once.

``DETECTORS`` maps a config's ``model_type`` to its :class:`DetectorSpec`; ``PRESETS`` maps every named
preset (``"dbnet_r18"`` ...) to its detector. Training, conversion and the CLIs look detectors up here
and never by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from transformers import PreTrainedConfig

from .base import MapKind, TargetMap, TargetSpec, TextDetectionPreTrainedModel
from .dbnet import DBNET_PRESETS, DBNetConfig, DBNetForTextDetection, DBNetOutput
from .dbnet.convert_dbnet import mmocr_config_text as _dbnet_mmocr_config_text
from .fcenet import FCENET_PRESETS, FCENetConfig, FCENetForTextDetection, FCENetOutput
from .fcenet.convert_fcenet import mmocr_config_text as _fcenet_mmocr_config_text
from .panet import PANET_PRESETS, PANetConfig, PANetForTextDetection, PANetOutput
from .panet.convert_panet import mmocr_config_text as _panet_mmocr_config_text
from .psenet import PSENET_PRESETS, PSENetConfig, PSENetForTextDetection, PSENetOutput
from .psenet.convert_psenet import mmocr_config_text as _psenet_mmocr_config_text


@dataclass(frozen=True)
class DetectorSpec:
    """One detector: its config and model classes, its named presets and its MMOCR config writer."""

    config_class: type[PreTrainedConfig]
    model_class: type[TextDetectionPreTrainedModel]
    presets: tuple[str, ...]
    mmocr_config_text: Callable[[PreTrainedConfig], str]


DETECTORS: dict[str, DetectorSpec] = {
    DBNetConfig.model_type: DetectorSpec(DBNetConfig, DBNetForTextDetection, tuple(DBNET_PRESETS),
                                         _dbnet_mmocr_config_text),
    PSENetConfig.model_type: DetectorSpec(PSENetConfig, PSENetForTextDetection, tuple(PSENET_PRESETS),
                                          _psenet_mmocr_config_text),
    PANetConfig.model_type: DetectorSpec(PANetConfig, PANetForTextDetection, tuple(PANET_PRESETS),
                                         _panet_mmocr_config_text),
    FCENetConfig.model_type: DetectorSpec(FCENetConfig, FCENetForTextDetection, tuple(FCENET_PRESETS),
                                          _fcenet_mmocr_config_text),
}
PRESETS: dict[str, DetectorSpec] = {name: spec for spec in DETECTORS.values() for name in spec.presets}


def config_from_preset(name: str, **overrides) -> PreTrainedConfig:
    """The config of a named preset, e.g. ``config_from_preset("dbnet_r50_dcnv2")``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].config_class.from_preset(name, **overrides)


def detector_spec(config: PreTrainedConfig) -> DetectorSpec:
    """The :class:`DetectorSpec` of a config (by ``model_type``)."""
    try:
        return DETECTORS[config.model_type]
    except KeyError:
        raise ValueError(f"{config.model_type!r} is not a freereal_hf detector; known: {sorted(DETECTORS)}") from None


__all__ = ["DETECTORS", "PRESETS", "DetectorSpec", "config_from_preset", "detector_spec",
           "TextDetectionPreTrainedModel", "MapKind", "TargetMap", "TargetSpec", "DBNetConfig", "DBNetForTextDetection",
           "DBNetOutput", "PSENetConfig", "PSENetForTextDetection", "PSENetOutput", "PANetConfig",
           "PANetForTextDetection", "PANetOutput", "FCENetConfig", "FCENetForTextDetection", "FCENetOutput"]
