"""freereal_hf: FreeReal pre-training of scene-text detectors in the Hugging Face ecosystem.

Importing the package registers every detector with ``AutoConfig``, ``AutoModel``, ``AutoModelForObjectDetection``
and ``AutoImageProcessor``, so ``AutoModel.from_pretrained(folder_or_hub_id)`` works for saved detectors and
``pipeline("object-detection", model=...)`` gives their boxes; and it registers the ``text-detection`` pipeline
(polygons), ``pipeline("text-detection", model=...)``.
"""

import logging

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForObjectDetection
from transformers.pipelines import PIPELINE_REGISTRY

from .image_processing import TextDetectionImageProcessor
from .pipelines import TextDetectionPipeline
from .models import (DETECTORS, PRESETS, DBNetConfig, DBNetForTextDetection, DBNetOutput, FCENetConfig,
                     FCENetForTextDetection, FCENetOutput, MapKind, PANetConfig,
                     PANetForTextDetection, PANetOutput, PSENetConfig, PSENetForTextDetection, PSENetOutput, TargetMap,
                     TargetSpec, TextDetectionPreTrainedModel, config_from_preset, detector_spec)

__version__ = "0.1.0"

for _spec in DETECTORS.values():
    AutoConfig.register(_spec.config_class.model_type, _spec.config_class, exist_ok=True)
    AutoModel.register(_spec.config_class, _spec.model_class, exist_ok=True)
    AutoModelForObjectDetection.register(_spec.config_class, _spec.model_class, exist_ok=True)
    # one cv2/numpy processor serves either backend transformers asks for (it would warn about a fallback)
    AutoImageProcessor.register(_spec.config_class, exist_ok=True,
                                image_processor_classes={"torchvision": TextDetectionImageProcessor,
                                                         "pil": TextDetectionImageProcessor})



class _RegisteredDetectorFilter(logging.Filter):
    """Drops transformers' "model X is not supported for object-detection": its pipeline checks a fixed list of
    class names and misses models registered with AutoModelForObjectDetection, as ours are."""

    names = tuple(f"'{spec.model_class.__name__}'" for spec in DETECTORS.values())

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("is not supported for" in message and message.startswith(tuple(f"The model {n}"
                                                                                    for n in self.names)))


logging.getLogger("transformers.pipelines.base").addFilter(_RegisteredDetectorFilter())
if "text-detection" not in PIPELINE_REGISTRY.supported_tasks:
    PIPELINE_REGISTRY.register_pipeline("text-detection", pipeline_class=TextDetectionPipeline, pt_model=AutoModel,
                                        type="image")

__all__ = ["DBNetConfig", "DBNetForTextDetection", "DBNetOutput", "PSENetConfig", "PSENetForTextDetection",
           "PSENetOutput", "PANetConfig", "PANetForTextDetection", "PANetOutput", "FCENetConfig",
           "FCENetForTextDetection", "FCENetOutput", "DETECTORS", "PRESETS",
           "MapKind", "TargetMap", "TargetSpec", "TextDetectionImageProcessor", "TextDetectionPipeline",
           "TextDetectionPreTrainedModel",
           "config_from_preset", "detector_spec", "__version__"]
