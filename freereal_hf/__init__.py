"""freereal_hf: FreeReal pre-training of scene-text detectors in the Hugging Face ecosystem.

Importing the package registers every detector with ``AutoConfig``, ``AutoModel`` and
``AutoImageProcessor``, so ``AutoModel.from_pretrained(folder_or_hub_id)`` works for saved detectors.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .image_processing import TextDetectionImageProcessor
from .models import (DETECTORS, PRESETS, DBNetConfig, DBNetForTextDetection, DBNetOutput, FCENetConfig,
                     FCENetForTextDetection, FCENetOutput, MapKind, PANetConfig,
                     PANetForTextDetection, PANetOutput, PSENetConfig, PSENetForTextDetection, PSENetOutput, TargetMap,
                     TargetSpec, TextDetectionPreTrainedModel, config_from_preset, detector_spec)

__version__ = "0.1.0"

for _spec in DETECTORS.values():
    AutoConfig.register(_spec.config_class.model_type, _spec.config_class, exist_ok=True)
    AutoModel.register(_spec.config_class, _spec.model_class, exist_ok=True)
    # one cv2/numpy processor serves either backend transformers asks for (it would warn about a fallback)
    AutoImageProcessor.register(_spec.config_class, exist_ok=True,
                                image_processor_classes={"torchvision": TextDetectionImageProcessor,
                                                         "pil": TextDetectionImageProcessor})

__all__ = ["DBNetConfig", "DBNetForTextDetection", "DBNetOutput", "PSENetConfig", "PSENetForTextDetection",
           "PSENetOutput", "PANetConfig", "PANetForTextDetection", "PANetOutput", "FCENetConfig",
           "FCENetForTextDetection", "FCENetOutput", "DETECTORS", "PRESETS",
           "MapKind", "TargetMap", "TargetSpec", "TextDetectionImageProcessor", "TextDetectionPreTrainedModel",
           "config_from_preset", "detector_spec", "__version__"]
