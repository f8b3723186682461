"""Standard addresses (标准地址) for the sample city, and addresses "as typed".

:func:`standard_addresses` gives every building its 门牌 address: the road it
faces (the nearest road), a house number counted along that road (odd on one
side, even on the other, one number per parcel), the compound (the parcel's
name) and a building number (栋) when a number holds several buildings, under
the sample's street (街道, from the district layer) and community (社区, from
the grid cell's responsible unit). Some residential buildings also get one
address per room (单元 / 室).

:func:`typed_addresses` derives addresses as people type them, with the truth
kept beside each: missing levels, 号/号院/弄, full-width digits, Chinese
numerals, traditional characters, short forms (成都 for 成都市, 锦江 for
锦江区), one-character typos in road names, a building's name instead of its
road and number, extra words (附近, 对面, 门口), and a share of addresses that
point nowhere real (numbers a road does not have, roads the city does not
have, addresses in another city).

Examples
--------
>>> from twin.sample import generate_city
>>> city = generate_city(300, seed=3)
>>> std = standard_addresses(city, seed=3)
>>> int((std["level"] != "room").sum())
300
>>> typed = typed_addresses(std, 50, seed=3)
>>> len(typed), sorted(typed.columns)[:2]
(50, ['noise', 'truth_building'])
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.address.parse import FIELDS as LEVEL_FIELDS
from twin.sample.draws import stream
from twin.sample.layout import TWIN_CRS
from twin.sample.names import FIRST, SECOND, zh_number

__all__ = ["PREFIX", "standard_addresses", "typed_addresses", "write_addresses"]

#: Province, city and county of the sample district.
PREFIX = ("四川省", "成都市", "锦江区")
_NEAR = ("附近", "对面", "门口", "旁边")
_BUILDING_UNITS = ("栋", "幢", "号楼", "栋")
_NUMBER_UNITS = ("号", "号", "号", "号院", "弄")


def standard_addresses(
    city: dict[str, gpd.GeoDataFrame], *, seed: int = 42, room_share: float = 0.08
) -> gpd.GeoDataFrame:
    """Return the standard address layer of a generated city.

    Parameters
    ----------
    city : dict of GeoDataFrame
        The layers of :func:`twin.sample.generate_city`.
    seed : int, default 42
        Random seed (which buildings get room addresses).
    room_share : float, default 0.08
        Share of residential buildings of three floors or more that get one
        address per room.

    Returns
    -------
    geopandas.GeoDataFrame
        One point per address (the building's inside point) with the fields of
        the ``address`` kind, ``addr_id`` and ``building_id`` (建筑编码).
    """
    b = city["buildings"]
    pts = b.geometry.representative_point().to_numpy()
    road_i, along, side = _nearest_road(pts, city["roads"])
    parcel_i = _containing(pts, city["parcels"].geometry.to_numpy())
    frame = pd.DataFrame(
        {
            "building_id": b["建筑编码"].to_numpy(),
            "road": city["roads"]["道路名称"].to_numpy()[road_i],
            "along": along,
            "side": side,
            "parcel": parcel_i,
        }
    )
    frame["group"] = np.where(parcel_i >= 0, parcel_i, -1 - np.arange(len(b)))
    frame["building_name"] = b["建筑名称"].to_numpy()
    _number(frame)
    parcel_names = city["parcels"]["地块名称"].to_numpy()
    compound = (frame["k"] > 1).to_numpy() & (parcel_i >= 0)
    frame["name"] = pd.Series(parcel_names[np.maximum(parcel_i, 0)], dtype=object).where(
        compound, None
    )
    frame["street"] = _zone_names(pts, city["districts"], "街道名称")
    units = city["grids"]["责任单位"].str.replace(r"^.*?街道|居委会$", "", regex=True)
    frame["community"] = _zone_names(pts, city["grids"].assign(c=units), "c")
    frame["building_name"] = b["建筑名称"].to_numpy()
    frame["use"] = b["用途"].to_numpy()
    frame["floors"] = b["层数"].fillna(1).astype(int).to_numpy()
    for level, value in zip(("province", "city", "district"), PREFIX, strict=True):
        frame[level] = value
    frame["unit"], frame["room"] = None, None
    frame["level"] = np.where(frame["building"].isna(), "house_number", "building")
    rooms = _rooms(frame, stream(seed, "addresses"), room_share)
    out = pd.concat([frame, rooms], ignore_index=True)
    out["addr_id"] = [f"DZ{i:07d}" for i in range(1, len(out) + 1)]
    out["address"] = full_text(out)
    geometry = np.concatenate([pts, pts[rooms["row"].to_numpy()]])
    columns = ["addr_id", "address", *LEVEL_FIELDS, "level", "building_id", "building_name"]
    return gpd.GeoDataFrame(out[columns], geometry=geometry, crs=TWIN_CRS)


def _nearest_road(
    pts: np.ndarray, roads: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest road of each point, the position along its name's axis, and the side."""
    lines = roads.geometry.to_numpy()
    tree = shapely.STRtree(lines)
    pairs = tree.query_nearest(pts, all_matches=False)
    road_i = np.empty(len(pts), dtype=np.int64)
    road_i[pairs[0]] = pairs[1]
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    end = shapely.get_coordinates(shapely.get_point(lines, -1))
    d = end - start
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    # one axis per road name, so numbers run the same way on every segment of it
    names = roads["道路名称"].to_numpy()
    _, inverse = np.unique(names, return_inverse=True)
    axis = np.zeros((inverse.max() + 1, 2))
    np.add.at(axis, inverse, d * np.sign(d[:, :1] + d[:, 1:] * 1e-3 + 1e-12))
    axis /= np.maximum(np.hypot(axis[:, 0], axis[:, 1]), 1e-9)[:, None]
    xy = shapely.get_coordinates(pts)
    a = axis[inverse[road_i]]
    along = (xy * a).sum(axis=1)
    rel = xy - start[road_i]
    side = (a[:, 0] * rel[:, 1] - a[:, 1] * rel[:, 0]) > 0
    return road_i, along, side


def _containing(pts: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point, -1 when none does."""
    tree = shapely.STRtree(polygons)
    pairs = tree.query(pts, predicate="within")
    out = np.full(len(pts), -1, dtype=np.int64)
    out[pairs[0]] = pairs[1]
    return out


def _zone_names(pts: np.ndarray, zones: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """Name of the zone holding each point (the nearest zone when none does)."""
    geoms = zones.geometry.to_numpy()
    pairs = shapely.STRtree(geoms).query_nearest(pts, all_matches=False)
    out = np.empty(len(pts), dtype=np.int64)
    out[pairs[0]] = pairs[1]
    return zones[column].to_numpy()[out]


def _number(frame: pd.DataFrame) -> None:
    """House numbers along each road (odd left, even right) and building numbers."""
    groups = frame.groupby(["road", "group"], sort=False).agg(
        along=("along", "mean"), side=("side", "mean"), k=("along", "size")
    )
    groups["side"] = groups["side"] > 0.5
    groups = groups.sort_values("along")
    rank = groups.groupby(["side", groups.index.get_level_values(0)]).cumcount().to_numpy()
    groups["number"] = 2 * rank + np.where(groups["side"], 2, 1)
    keys = pd.MultiIndex.from_frame(frame[["road", "group"]])
    frame["number"] = groups["number"].reindex(keys).to_numpy().astype(str)
    # buildings are numbered per compound (parcel), across the roads it faces
    frame["k"] = frame.groupby("group")["along"].transform("size").to_numpy()
    frame["building"] = _building_numbers(frame)


def _building_numbers(frame: pd.DataFrame) -> pd.Series:
    """Building numbers per compound: the number in a building's name (芙湖新村3栋 → 3) when
    no other building of the compound has it, else the next numbers after the largest."""
    named = pd.to_numeric(
        frame["building_name"].str.extract(
            r"(\d+)(?:栋|号楼|座|号厂房|号机房|号教学楼|号住院楼|馆)$", expand=False
        ),
        errors="coerce",
    )
    order = frame.assign(named=named).sort_values("along")
    taken = order["named"].notna() & ~order.duplicated(["group", "named"])
    top = order["named"].where(taken).groupby(order["group"]).transform("max").fillna(0)
    rest = (~taken).astype(int).groupby(order["group"]).cumsum()
    number = order["named"].where(taken, top + rest).astype(int).astype(str)
    many = frame["k"].reindex(order.index) > 1
    return number.where(many, None).reindex(frame.index)


def _rooms(frame: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """One address per room for a share of residential buildings (2 units, 2 rooms a floor)."""
    eligible = np.flatnonzero((frame["use"] == "住宅").to_numpy() & (frame["floors"] >= 3))
    chosen = np.sort(rng.choice(eligible, size=round(share * len(eligible)), replace=False))
    rows = []
    all_floors = frame["floors"].to_numpy(dtype=np.int64)
    for row in chosen:
        floors = min(int(all_floors[row]), 6)
        for unit in (1, 2):
            for floor in range(1, floors + 1):
                for door in (1, 2):
                    rows.append((row, str(unit), f"{floor}{door:02d}"))
    rooms = pd.DataFrame(rows, columns=["row", "unit", "room"])
    out = frame.iloc[rooms["row"].to_numpy()].reset_index(drop=True)
    out["unit"], out["room"], out["level"] = rooms["unit"], rooms["room"], "room"
    out["row"] = rooms["row"]
    return out


def full_text(frame: pd.DataFrame) -> list[str]:
    """The full standard address of every row."""
    out = []
    columns = ["province", "city", "district", "street", "community", "road", "number"]
    parts = [frame[c].astype(str).tolist() for c in columns]
    heads = ["".join(row) + "号" for row in zip(*parts, strict=True)]
    for head, name, building, unit, room in zip(
        heads, frame["name"], frame["building"], frame["unit"], frame["room"], strict=True
    ):
        text = str(head)
        if isinstance(building, str):
            text += f"{name if isinstance(name, str) else ''}{building}栋"
        if isinstance(unit, str):
            text += f"{unit}单元{room}室"
        out.append(text)
    return out


def typed_addresses(
    standard: pd.DataFrame, n: int = 3000, *, seed: int = 42, nowhere_share: float = 0.08
) -> pd.DataFrame:
    """Return ``n`` addresses as people type them, with the truth beside each.

    Parameters
    ----------
    standard : DataFrame
        The layer of :func:`standard_addresses`.
    n : int, default 3000
        How many addresses.
    seed : int, default 42
        Random seed.
    nowhere_share : float, default 0.08
        Share of addresses that point at no real building.

    Returns
    -------
    pandas.DataFrame
        ``地址`` (the text), ``truth_id`` (the standard address meant, None when
        nowhere), ``truth_building`` (its 建筑编码), ``truth_level`` and ``noise``
        (what was done to the text).
    """
    rng = stream(seed, "typed-addresses")
    roads = sorted(set(standard["road"]))
    top = standard.assign(n=pd.to_numeric(standard["number"])).groupby("road")["n"].max()
    n_nowhere = round(nowhere_share * n)
    picks = rng.choice(len(standard), size=n - n_nowhere, replace=len(standard) < n)
    scope = _name_scope(standard)
    chosen = standard.iloc[picks].assign(scope=scope[picks]).to_dict("records")
    rows = [_typed_row(r, rng, set(roads)) for r in chosen]
    rows += [_nowhere_row(rng, roads, top) for _ in range(n_nowhere)]
    order = rng.permutation(len(rows))
    return pd.DataFrame(
        [rows[i] for i in order],
        columns=["地址", "truth_id", "truth_building", "truth_level", "noise"],
    )


def _prefix(rng: np.random.Generator) -> str:
    options = (
        "四川省成都市锦江区",
        "成都市锦江区",
        "成都锦江区",
        "成都市锦江",
        "锦江区",
        "锦江",
        "成都市",
        "",
    )
    return str(options[rng.choice(len(options), p=(0.2, 0.2, 0.1, 0.1, 0.15, 0.05, 0.05, 0.15))])


def _name_scope(standard: pd.DataFrame) -> np.ndarray:
    """Whether a building's name finds it: "" city-wide, "community" within its community,
    None not at all (another building of a same-named compound has the same number)."""
    n = len(standard)
    rows = np.arange(n)
    keep = (standard["level"] != "room").to_numpy()
    parts = standard["building_name"].str.extract(r"^(.*?)(\d+)\D*$")
    community = standard["community"].to_numpy()
    own = pd.DataFrame(
        {"n": parts[0].to_numpy(), "b": parts[1].to_numpy(), "row": rows, "c": community}
    )[keep].dropna()
    compound = pd.DataFrame(
        {
            "n": standard["name"].to_numpy(),
            "b": standard["building"].to_numpy(),
            "row": rows,
            "c": community,
        }
    )[keep].dropna()
    keys = pd.concat([own, compound]).drop_duplicates().reset_index(drop=True)
    keys["city"] = keys.groupby(["n", "b"])["row"].transform("nunique")
    keys["local"] = keys.groupby(["c", "n", "b"])["row"].transform("nunique")
    own = own.merge(keys, on=["n", "b", "row", "c"])
    out = np.full(n, None, dtype=object)
    city, local = (own["city"] == 1).tolist(), (own["local"] == 1).tolist()
    scope = ["" if c else ("community" if lo else None) for c, lo in zip(city, local, strict=True)]
    out[own["row"].to_numpy()] = scope
    # a room is found by its building's name where the building is
    by_building = dict(zip(standard["building_id"][keep], out[keep], strict=True))
    rooms = np.flatnonzero(~keep)
    out[rooms] = [by_building.get(b) for b in standard["building_id"].to_numpy()[rooms]]
    return out


def _typed_row(r: dict, rng: np.random.Generator, roads: set[str]) -> tuple:
    noise: list[str] = []
    has_building = isinstance(r["building"], str)
    text = _prefix(rng)
    scope = r["scope"] if isinstance(r["scope"], str) else None
    if rng.random() < 0.25 and scope != "community":
        text += r["street"]
    if rng.random() < 0.2 or (scope == "community" and rng.random() < 0.4):
        text += r["community"]
    name = r["building_name"]
    if isinstance(name, str) and scope is not None and rng.random() < 0.4:
        if scope == "community" and r["community"] not in text:
            text += r["community"]
        text += name
        noise.append("building-name")
    else:
        road = r["road"]
        if rng.random() < 0.08:
            road = _typo(road, rng, roads)
            noise.append("typo")
        text += road + _num(r["number"], rng, noise) + str(rng.choice(_NUMBER_UNITS))
        if has_building:
            if isinstance(r["name"], str) and rng.random() < 0.4:
                text += r["name"]
            text += _num(r["building"], rng, noise) + str(rng.choice(_BUILDING_UNITS))
    if isinstance(r["unit"], str):
        text += (
            _num(r["unit"], rng, noise) + "单元" + r["room"] + ("室" if rng.random() < 0.6 else "")
        )
    text = _surface(text, rng, noise)
    return (text, r["addr_id"], r["building_id"], r["level"], ",".join(noise))


def _num(value: str, rng: np.random.Generator, noise: list[str]) -> str:
    if rng.random() < 0.12 and 1 <= int(value) <= 99:
        noise.append("zh-numeral")
        return zh_number(int(value))
    return value


def _surface(text: str, rng: np.random.Generator, noise: list[str]) -> str:
    """Full-width digits, traditional characters, spaces and extra words."""
    if rng.random() < 0.12:
        text = text.translate({ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789"})
        noise.append("full-width")
    if rng.random() < 0.08:
        from twin.address.normalise import to_traditional

        text = to_traditional(text)
        noise.append("traditional")
    if rng.random() < 0.08:
        text += str(rng.choice(_NEAR))
        noise.append("near")
    if rng.random() < 0.08:
        cut = int(rng.integers(1, len(text)))
        text = text[:cut] + " " + text[cut:]
        noise.append("space")
    return text


def _typo(road: str, rng: np.random.Generator, roads: set[str]) -> str:
    """Replace one character of the road's two-syllable base name; never another real road."""
    syllables = [c for c, _ in FIRST] + [c for c, _ in SECOND]
    for _ in range(10):
        pos = int(rng.integers(0, 2))
        typo = road[:pos] + str(rng.choice(syllables)) + road[pos + 1 :]
        if typo not in roads and typo != road:
            return typo
    return road


def _nowhere_row(rng: np.random.Generator, roads: list[str], top: pd.Series) -> tuple:
    """An address of no building: a number past the road's end, an unknown road, another city."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        road = str(rng.choice(roads))
        number = int(str(top[road])) + int(rng.integers(30, 400))
        text = f"{_prefix(rng)}{road}{number}号"
    elif kind == 1:
        first = str(rng.choice([c for c, _ in FIRST]))
        second = str(rng.choice(["关", "渡", "冈", "原", "埠", "屯"]))
        text = f"{_prefix(rng)}{first}{second}大道{int(rng.integers(1, 300))}号"
    else:
        text = str(
            rng.choice(
                [
                    "上海市黄浦区广东路100号",
                    "上海市静安区共和新路1200号",
                    "广东省东莞市虎门镇连升路8号",
                    "中山市小榄镇民安南路30号",
                    "北京市朝阳区建国路88号",
                ]
            )
        )
    return (_surface(text, rng, []), None, None, "nowhere", "nowhere")


def write_addresses(
    city: dict[str, gpd.GeoDataFrame], out_dir: str | Path, *, n_typed: int = 3000, seed: int = 42
) -> dict[str, Path]:
    """Write ``addresses.gpkg`` (the standard layer) and ``addresses_typed.csv`` (UTF-8).

    Examples
    --------
    >>> import tempfile
    >>> from twin.sample import generate_city
    >>> paths = write_addresses(generate_city(200, seed=1), tempfile.mkdtemp(), n_typed=20)
    >>> sorted(paths)
    ['standard', 'typed']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    std = standard_addresses(city, seed=seed)
    paths = {"standard": out / "addresses.gpkg", "typed": out / "addresses_typed.csv"}
    std.to_file(paths["standard"], layer="addresses", driver="GPKG")
    typed_addresses(std, n_typed, seed=seed).to_csv(paths["typed"], index=False)
    return paths
