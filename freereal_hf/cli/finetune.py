"""``freereal-finetune``: supervised fine-tuning of a detector (also under ``accelerate launch``).

  freereal-finetune --output_dir outputs/ft --model outputs/pretrain/final --train_dataset data/icdar2015
  accelerate launch --multi_gpu --num_processes 2 -m freereal_hf.cli.finetune config.yaml
  freereal-finetune            # DBNet-R18 on 16 generated demo images, a few minutes on a CPU

Every option is a field of ``FinetuneArguments`` (``--help`` lists them); a YAML/JSON file may hold them.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from .args import report_errors

    return report_errors("freereal-finetune", lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    from ..training.finetune import FinetuneArguments, finetune
    from .args import parse_dataclass

    args = parse_dataclass(FinetuneArguments, argv, "freereal-finetune")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("freereal_hf").setLevel(logging.INFO)
    result = finetune(args)
    if result["final_dir"]:
        m = result["metrics"]
        print(f"h-mean {m['hmean']:.4f} (P {m['precision']:.4f}, R {m['recall']:.4f}); saved {result['final_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
