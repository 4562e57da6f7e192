"""Fine-tune a detector: the same as ``freereal-finetune`` (works under ``accelerate launch``)."""

import sys

from freereal_hf.cli.finetune import main

if __name__ == "__main__":
    sys.exit(main())
