"""Command line: ``python -m twin.sample OUT_DIR --buildings N --seed S``.

Generates the synthetic city and writes it as a delivery (see
:func:`twin.sample.write_delivery`), then prints one line per layer.

Examples
--------
>>> import tempfile
>>> main([tempfile.mkdtemp(), "--buildings", "200", "--seed", "1", "--quiet"])
0
>>> main([tempfile.mkdtemp(), "--buildings", "200", "--addresses", "--quiet"])
0
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from twin.errors import TwinError
from twin.sample import generate_city, write_delivery
from twin.sample.terrain import write_terrain
from twin.sample.writing import FORMATS


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m twin.sample``."""
    parser = argparse.ArgumentParser(
        prog="python -m twin.sample",
        description="Generate the synthetic sample city and write it as a municipal delivery.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the files into")
    parser.add_argument(
        "--buildings",
        type=int,
        default=3000,
        metavar="N",
        help="number of buildings (default: 3000)",
    )
    parser.add_argument(
        "--seed", type=int, default=42, metavar="S", help="random seed (default: 42)"
    )
    parser.add_argument(
        "--formats",
        choices=FORMATS,
        default="delivery",
        help="delivery files (default) or one city.gpkg",
    )
    parser.add_argument(
        "--addresses",
        action="store_true",
        help="also write addresses.gpkg (standard addresses) and addresses_typed.csv",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        city = generate_city(args.buildings, seed=args.seed)
        paths = write_delivery(city, args.out_dir, formats=args.formats)
        if args.formats == "delivery":  # the DEM and DSM (2 m) of the district
            paths = {**paths, **write_terrain(city, args.out_dir, seed=args.seed)}
        if args.addresses:
            from twin.sample.addresses import write_addresses

            written = write_addresses(city, args.out_dir, seed=args.seed)
            paths.update({f"addresses ({k})": v for k, v in written.items()})
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for name, frame in city.items():
            print(f"{name:12s} {len(frame):>9,d}  {paths[name].name}")
        for name, path in paths.items():
            if name.startswith("addresses ("):
                print(f"{name:12s} {'':>9s}  {path.name}")
        print(f"{'mapping':12s} {'':>9s}  {paths['mapping'].name}")
        for name in ("dem", "dsm"):
            if name in paths:
                print(f"{name:12s} {'':>9s}  {paths[name].name}")
        print(f"written to {args.out_dir} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
