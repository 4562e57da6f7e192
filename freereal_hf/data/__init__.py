"""Text-detection data: the schema, native-format readers, Hub-like folders, transforms and demo data."""

from .demo import demo_dataset, demo_records, render_sample
from .formats import FORMATS, Entry, get_format
from .prepare import iter_records, prepare, streaming_dataset
from .records import RecordError, Report, clean_record
from .schema import FEATURES
from .transforms import (AugmentConfig, Geometry, TrainTransform, apply_geometry, normalize_batch, sample_geometry,
                         training_view)

__all__ = ["FEATURES", "FORMATS", "Entry", "get_format", "prepare", "streaming_dataset", "iter_records", "Report",
           "RecordError", "clean_record", "demo_dataset", "demo_records", "render_sample", "AugmentConfig",
           "Geometry", "TrainTransform", "apply_geometry", "normalize_batch", "sample_geometry", "training_view"]
