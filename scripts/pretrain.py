"""FreeReal pre-training: the same as ``freereal-pretrain`` (works under ``accelerate launch``)."""

import sys

from freereal_hf.cli.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
