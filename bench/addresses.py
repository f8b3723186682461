"""Geocoding benchmark: typed addresses against a standard address layer (标准地址).

Inputs (cached under bench/.cache/addresses-N-SEED): the standard address layer
of a generated city trimmed to N addresses (``standard.parquet``, attributes
only) and N typed addresses with their truth (``typed.parquet``), both from
:mod:`twin.sample.addresses`.

Ours: :class:`twin.address.AddressIndex` built once, then
:func:`twin.address.batch.match_many` over every typed address on the
process's CPUs. Peer: what one would write with the usual tools, cpca for the
province / city / district and rapidfuzz ``process.extractOne`` of the rest
over every standard address (below the district), on a sample it finishes
(``PEER_SAMPLE`` addresses). Both are scored on the same sample: share of the
addresses of a real building matched to it, share of wrong building claims,
share of nowhere addresses left unmatched.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PEER_SAMPLE = 300
_ROWS_PER_BUILDING = 1.9  # building rows + room rows at the default room share
_PEER_CUTOFF = 70.0  # fuzz.ratio: the peer's best point with <= 1% wrong claims on the sample


def prepare_addresses(cache: Path, n: int, seed: int) -> dict[str, Path]:
    """Generate (once) the standard layer of ~``n`` addresses and ``n`` typed addresses."""
    folder = cache / f"addresses-{n}-{seed}"
    std_path, typed_path = folder / "standard.parquet", folder / "typed.parquet"
    if not typed_path.exists():
        from twin.sample import generate_city
        from twin.sample.addresses import standard_addresses, typed_addresses

        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        city = generate_city(max(100, int(n / _ROWS_PER_BUILDING)), seed=seed)
        std = standard_addresses(city, seed=seed)
        std = pd.DataFrame(std.drop(columns="geometry")).iloc[:n]
        typed = typed_addresses(std, n, seed=seed)
        std.to_parquet(std_path)
        typed.to_parquet(typed_path)
        print(
            f"generated {len(std):,} standard and {len(typed):,} typed addresses "
            f"in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    return {"addresses": std_path, "typed": typed_path}


def _sample(typed: pd.DataFrame) -> np.ndarray:
    return np.random.default_rng(7).choice(
        len(typed), size=min(PEER_SAMPLE, len(typed)), replace=False
    )


def _score(
    typed: pd.DataFrame, claimed: list[str | None], building_of: pd.Series
) -> dict[str, float]:
    """Shares: real addresses matched to their building, wrong claims, nowhere left unmatched."""
    got = pd.Series([building_of.get(u) if u else None for u in claimed], index=typed.index)
    real = (typed["truth_level"] != "nowhere").to_numpy()
    claims = got.notna().to_numpy()
    right = claims & (got.to_numpy() == typed["truth_building"].to_numpy())
    return {
        "found": round(float(right[real].mean()), 4),
        "wrong_claims": round(float((claims & ~right).mean()), 4),
        "nowhere_unclaimed": round(float((~claims[~real]).mean()), 4) if (~real).any() else 1.0,
    }


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the forked workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def geocode_ours(inputs: dict[str, Path], scratch: Path) -> dict[str, Any]:
    from twin.address.batch import match_many
    from twin.address.match import AddressIndex

    std = pd.read_parquet(inputs["addresses"]).set_index("addr_id")
    typed = pd.read_parquet(inputs["typed"])
    started = time.perf_counter()
    index = AddressIndex(std)
    index_s = time.perf_counter() - started
    texts = typed["地址"].tolist()
    started, cpu = time.perf_counter(), _cpu_s()
    answers = match_many(index, texts)
    geocode_s, cpu_s = time.perf_counter() - started, _cpu_s() - cpu
    claimed = [m.uid if m.level in ("room", "building") else None for m in answers]
    building_of = std["building_id"]
    sample = _sample(typed)
    facts = {
        "addresses": len(std),
        "typed": len(texts),
        "index_s": round(index_s, 2),
        "geocode_s": round(geocode_s, 2),
        "per_s": round(len(texts) / geocode_s),
        "cpu_s": round(cpu_s, 2),
        "per_cpu_s": round(len(texts) / cpu_s),
        "cpus": len(os.sched_getaffinity(0)),
        "ms_per_1000": round(1000 * geocode_s / len(texts) * 1000, 3),
        "levels": pd.Series([m.level for m in answers]).value_counts().to_dict(),
        "all": _score(typed, claimed, building_of),
        "sample": _score(typed.iloc[sample], [claimed[i] for i in sample], building_of),
    }
    return facts


def geocode_peer(inputs: dict[str, Path], scratch: Path) -> dict[str, Any]:
    import cpca
    from rapidfuzz import fuzz, process

    std = pd.read_parquet(inputs["addresses"]).set_index("addr_id")
    typed = pd.read_parquet(inputs["typed"]).iloc[_sample(pd.read_parquet(inputs["typed"]))]
    # the standard addresses below the district, as the peer would match them
    tail = std["address"].str.replace(r"^四川省成都市锦江区", "", regex=True).tolist()
    uids = std.index.tolist()
    started = time.perf_counter()
    parsed = cpca.transform(typed["地址"].tolist())
    claimed: list[str | None] = []
    for (_, row), text in zip(parsed.iterrows(), typed["地址"], strict=True):
        if isinstance(row["区"], str) and row["区"] != "锦江区":
            claimed.append(None)
            continue
        rest = row["地址"] if isinstance(row["地址"], str) else text
        best = process.extractOne(rest, tail, scorer=fuzz.ratio, score_cutoff=_PEER_CUTOFF)
        claimed.append(uids[best[2]] if best else None)
    seconds = time.perf_counter() - started
    return {
        "addresses": len(std),
        "typed": len(typed),
        "geocode_s": round(seconds, 2),
        "per_s": round(len(typed) / seconds, 1),
        "ms_per_1000": round(1000 * seconds / len(typed) * 1000, 3),
        "sample": _score(typed, claimed, std["building_id"]),
    }
