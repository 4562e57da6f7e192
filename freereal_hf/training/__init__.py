"""Training loops on accelerate: supervised fine-tuning and FreeReal pre-training."""

from .common import load_model, load_text_dataset
from .evaluation import Evaluation, detect, evaluate_detector
from .finetune import FinetuneArguments, finetune
from .pretrain import PretrainArguments, pretrain

__all__ = ["FinetuneArguments", "finetune", "PretrainArguments", "pretrain", "detect", "evaluate_detector",
           "Evaluation", "load_model", "load_text_dataset"]
