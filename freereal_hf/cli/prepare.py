"""``freereal-prepare FORMAT SRC --out DIR``: a native release -> a folder laid out like a Hub dataset repo.

Writes DIR/data/<split>-NNNNN-of-NNNNN.parquet and DIR/README.md (a dataset card whose YAML lets
``load_dataset(DIR)`` or ``load_dataset("ORG/NAME")`` find the shards). Bad records are warned about by
name, repaired or skipped, and counted in the summary printed at the end.

  freereal-prepare icdar2015 ~/data/icdar2015 --out data/icdar2015
  freereal-prepare synthtext ~/data/SynthText --out data/synthtext --push-to-hub me/synthtext
  freereal-prepare imagefolder ~/photos --out data/my-urd --push-to-hub me/my-urd --dry-run
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..data.formats import FORMATS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=sorted(FORMATS), help="the release's format")
    parser.add_argument("src", help="the release folder as it unpacks (images and annotations)")
    parser.add_argument("--out", required=True, help="output folder (Hub dataset layout)")
    parser.add_argument("--split", help="put every image in this split (default: from folder names)")
    parser.add_argument("--name", help="dataset name in the card (default: the output folder's name)")
    parser.add_argument("--max-shard-mb", type=int, default=500, help="about this many MB of image files per parquet "
                        "shard, planned from the files' sizes (500)")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the folder as this dataset repo")
    parser.add_argument("--dry-run", action="store_true", help="with --push-to-hub: list the upload, send nothing")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace data/ and README.md of a non-empty --out (an earlier output included)")
    parser.add_argument("--num-proc", type=int, default=1, help="processes that each read, check and write whole "
                        "shards (the output is byte-identical for any number; more processes than shards do not help)")
    args = parser.parse_args(argv)
    if args.num_proc < 1:
        parser.error(f"--num-proc must be at least 1, got {args.num_proc}")
    if args.max_shard_mb <= 0:
        parser.error(f"--max-shard-mb must be positive, got {args.max_shard_mb}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    from ..data.prepare import prepare
    from ..hub import push_folder

    try:
        files, report = prepare(args.format, args.src, args.out, name=args.name or args.push_to_hub,
                                split=args.split, max_shard_bytes=args.max_shard_mb * 1_000_000,
                                overwrite=args.overwrite, num_proc=args.num_proc)
    except (FileNotFoundError, ValueError) as exc:
        print(f"freereal-prepare: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {sum(len(v) for v in files.values())} parquet file(s) to {args.out}")
    print(report.summary())
    if args.push_to_hub:
        push_folder(args.out, args.push_to_hub, repo_type="dataset", dry_run=args.dry_run,
                    commit_message=f"freereal-prepare {args.format}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
