"""``freereal-pretrain``: FreeReal pre-training of a detector (also under ``accelerate launch``).

  freereal-pretrain --output_dir outputs/pretrain --max_steps 60       # demo data, a few minutes on a CPU
  freereal-pretrain --synthetic_dataset me/synthtext --real_datasets me/mlt17 me/lsvt --real_weights 1 2 \\
      --model dbnet_r50 --max_steps 100000 --batch_size 12 --mixed_precision bf16 --push_to_hub me/dbnet-freereal
  accelerate launch --multi_gpu --num_processes 2 -m freereal_hf.cli.pretrain config.yaml --resume true

Every option is a field of ``PretrainArguments`` (``--help`` lists them); a YAML/JSON file may hold them.
With no dataset arguments the embedded demo data is used. The result, OUTPUT_DIR/final, loads with
``AutoModel.from_pretrained`` and fine-tunes with ``freereal-finetune --model OUTPUT_DIR/final``.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from .args import report_errors

    return report_errors("freereal-pretrain", lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    from ..training.pretrain import PretrainArguments, pretrain
    from .args import parse_dataclass

    args = parse_dataclass(PretrainArguments, argv, "freereal-pretrain")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("freereal_hf").setLevel(logging.INFO)
    result = pretrain(args)
    if result["final_dir"]:
        print(f"pre-trained {result['global_step']} steps; saved {result['final_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
