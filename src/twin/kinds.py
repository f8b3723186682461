"""Layer kinds: what a parcel, a building, a pipe… must carry.

Each kind declares its geometry family, the CIM data category it belongs to,
its default classification (数据分级分类) and its fields with types and units.
Units are part of field names (``height_m``, ``diameter_mm``), as everywhere
in twin.

Examples
--------
>>> from twin.kinds import get_kind
>>> building = get_kind("building")
>>> building.geometry, building.category.value, building.classification.value
('polygon', 'spatio_temporal_base', 'public')
>>> [f.name for f in building.fields][:3]
['floors', 'height_m', 'name']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from twin.errors import UsageError


class Category(StrEnum):
    """CIM data categories (城市信息模型数据分类).

    Examples
    --------
    >>> Category("planning_control").label_zh
    '规划管控'
    """

    SPATIO_TEMPORAL_BASE = "spatio_temporal_base"  # 时空基础
    RESOURCE_SURVEY = "resource_survey"  # 资源调查
    PLANNING_CONTROL = "planning_control"  # 规划管控
    CONSTRUCTION_PROJECT = "construction_project"  # 工程建设项目
    PUBLIC_THEMATIC = "public_thematic"  # 公共专题
    IOT_SENSING = "iot_sensing"  # 物联感知

    @property
    def label_zh(self) -> str:
        return _CATEGORY_ZH[self]


_CATEGORY_ZH = {
    Category.SPATIO_TEMPORAL_BASE: "时空基础",
    Category.RESOURCE_SURVEY: "资源调查",
    Category.PLANNING_CONTROL: "规划管控",
    Category.CONSTRUCTION_PROJECT: "工程建设项目",
    Category.PUBLIC_THEMATIC: "公共专题",
    Category.IOT_SENSING: "物联感知",
}


class Classification(StrEnum):
    """Data classification levels (数据分级), lowest first.

    Examples
    --------
    >>> Classification("restricted").rank > Classification("public").rank
    True
    """

    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"

    @property
    def rank(self) -> int:
        return _RANKS[self]  # every request ranks each layer: a lookup, not a list made


_RANKS = {level: rank for rank, level in enumerate(Classification)}


NETWORKS = ("water", "gas", "drainage", "heat", "power")
VALVE_STATUSES = ("open", "closed", "inoperable")
SOURCE_TYPES = ("reservoir", "tank", "plant", "prv", "well")
# Sensor types whose locations are restricted whatever the layer's default.
RESTRICTED_SENSOR_TYPES = ("camera", "video")
#: Level fields of a standard address (标准地址), broadest first.
ADDRESS_LEVELS = (
    ("province", "province (省)"),
    ("city", "city (市)"),
    ("district", "county-level district (区/县)"),
    ("street", "sub-district or town (街道/镇)"),
    ("community", "community or village (社区/村)"),
    ("road", "road with its section (路/街/巷, 段)"),
    ("number", "house number (门牌号: 号/号院/弄)"),
    ("building", "building number (栋/幢/座/号楼)"),
    ("unit", "unit (单元)"),
    ("room", "room (室)"),
    ("level", "finest level: room, building or house_number"),
)


@dataclass(frozen=True)
class FieldSpec:
    """One declared field of a kind.

    ``dtype`` is one of ``int``, ``float``, ``str``, ``bool``; ``oneway`` is an
    ``int`` in {-1, 0, 1} parsed from the usual spellings (yes / no / -1 / 是).
    """

    name: str
    dtype: str
    unit: str | None = None
    description: str = ""
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: object = None


@dataclass(frozen=True)
class LayerKind:
    """The schema of one kind of layer.

    Examples
    --------
    >>> kind = get_kind("pipe")
    >>> kind.geometry, kind.classification.value
    ('line', 'restricted')
    """

    name: str
    geometry: str  # "point", "line" or "polygon" (multi-parts allowed)
    category: Category
    classification: Classification
    description: str
    fields: tuple[FieldSpec, ...] = ()
    require_one_of: tuple[tuple[str, ...], ...] = field(default=())

    def field(self, name: str) -> FieldSpec | None:
        """Return the spec of field ``name``, or None when the kind does not declare it."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def _f(name: str, dtype: str, unit: str | None = None, desc: str = "", **kw: object) -> FieldSpec:
    return FieldSpec(name, dtype, unit, desc, **kw)  # type: ignore[arg-type]


_NETWORK = _f("network", "str", None, "utility network", required=True, choices=NETWORKS)
_NAME = _f("name", "str", None, "name")

KINDS: dict[str, LayerKind] = {
    k.name: k
    for k in (
        LayerKind(
            "parcel",
            "polygon",
            Category.PLANNING_CONTROL,
            Classification.PUBLIC,
            "land parcel (地块) with its planning controls",
            (
                _f("parcel_code", "str", None, "parcel code (地块编码)"),
                _f("land_use", "str", None, "land-use code (用地性质)"),
                _f(
                    "far_limit",
                    "float",
                    "ratio",
                    "maximum floor area ratio (容积率上限)",
                    minimum=0,
                ),
                _f("height_limit_m", "float", "m", "height limit (限高)", minimum=0),
                _f(
                    "coverage_limit",
                    "float",
                    "ratio",
                    "maximum building coverage (建筑密度上限)",
                    minimum=0,
                    maximum=1,
                ),
                _NAME,
            ),
        ),
        LayerKind(
            "building",
            "polygon",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.PUBLIC,
            "building footprint (建筑物)",
            (
                _f("floors", "int", "count", "storeys above ground (层数)", minimum=0),
                _f("height_m", "float", "m", "building height (建筑高度)", minimum=0),
                _NAME,
                _f("use", "str", None, "building use"),
                _f("population", "int", "persons", "residents or occupants", minimum=0),
                _f("address", "str", None, "address (地址)"),
            ),
            require_one_of=(("floors", "height_m"),),
        ),
        LayerKind(
            "road",
            "line",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.PUBLIC,
            "road centre line (道路中心线)",
            (
                _f("road_class", "str", None, "road class (道路等级) or OSM highway value"),
                _NAME,
                _f("oneway", "oneway", None, "0 two-way, 1 digitised direction only, -1 against"),
                _f("lanes", "int", "count", "lanes", minimum=0),
                _f("speed_kmh", "float", "km/h", "design or posted speed", minimum=0),
                _f("level", "int", None, "vertical level (OSM layer): bridges > 0, tunnels < 0"),
                _f("bridge", "bool", None, "on a bridge"),
                _f("tunnel", "bool", None, "in a tunnel"),
            ),
        ),
        LayerKind(
            "pipe",
            "line",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.RESTRICTED,
            "utility pipe (管线)",
            (
                _NETWORK,
                _f("diameter_mm", "float", "mm", "inner diameter (管径)", minimum=0),
                _f("material", "str", None, "material (材质)"),
                _f("length_m", "float", "m", "length as recorded by the owner", minimum=0),
                _f("install_year", "int", "year", "year laid", minimum=1800, maximum=2100),
                _f("status", "str", None, "open / closed / cv (check valve)"),
                _f("from_node", "str", None, "start node id (EPANET)"),
                _f("to_node", "str", None, "end node id (EPANET)"),
                _f("roughness", "float", None, "roughness coefficient", minimum=0),
                _f("invert_up_m", "float", "m", "upstream invert elevation (drainage)"),
                _f("invert_down_m", "float", "m", "downstream invert elevation (drainage)"),
            ),
        ),
        LayerKind(
            "valve",
            "point",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.RESTRICTED,
            "valve on a pipe (阀门)",
            (
                _f(
                    "status",
                    "str",
                    None,
                    "open, closed (normally closed) or inoperable",
                    required=True,
                    choices=VALVE_STATUSES,
                    default="open",
                ),
                _f("network", "str", None, "utility network", choices=NETWORKS),
                _f("valve_type", "str", None, "gate, butterfly, PRV, …"),
                _f("diameter_mm", "float", "mm", "valve size", minimum=0),
                _f("from_node", "str", None, "start node id (EPANET link valves)"),
                _f("to_node", "str", None, "end node id (EPANET link valves)"),
            ),
        ),
        LayerKind(
            "source",
            "point",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.RESTRICTED,
            "network source: reservoir, tank, plant or pressure-regulating station (水源/气源)",
            (
                _f(
                    "source_type",
                    "str",
                    None,
                    "reservoir, tank, plant, prv or well",
                    required=True,
                    choices=SOURCE_TYPES,
                ),
                _NETWORK,
                _NAME,
                _f("elevation_m", "float", "m", "elevation or total head"),
            ),
        ),
        LayerKind(
            "junction",
            "point",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.RESTRICTED,
            "network node (节点)",
            (
                _NETWORK,
                _f("elevation_m", "float", "m", "elevation"),
                _f("base_demand_lps", "float", "L/s", "base demand"),
            ),
        ),
        LayerKind(
            "pump",
            "point",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.RESTRICTED,
            "pump (泵站)",
            (
                _NETWORK,
                _f("from_node", "str", None, "suction node id"),
                _f("to_node", "str", None, "discharge node id"),
                _f("power_kw", "float", "kW", "constant power", minimum=0),
            ),
        ),
        LayerKind(
            "sensor",
            "point",
            Category.IOT_SENSING,
            Classification.INTERNAL,
            "IoT sensor (物联感知设备); layers holding cameras are restricted",
            (
                _f(
                    "sensor_type",
                    "str",
                    None,
                    "water_pressure, gas_leak, smoke, camera, …",
                    required=True,
                ),
                _NAME,
                _f("device_id", "str", None, "device id"),
                _f("unit", "str", None, "unit of the readings"),
                _f("threshold_low", "float", None, "alarm below this reading"),
                _f("threshold_high", "float", None, "alarm above this reading"),
                _f("radius_m", "float", "m", "sensing radius", minimum=0),
            ),
        ),
        LayerKind(
            "district",
            "polygon",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.PUBLIC,
            "administrative district (行政区/街道)",
            (
                _NAME,
                _f("district_code", "str", None, "district code"),
                _f("population", "int", "persons", "population", minimum=0),
            ),
        ),
        LayerKind(
            "grid",
            "polygon",
            Category.PUBLIC_THEMATIC,
            Classification.PUBLIC,
            "management grid cell (网格)",
            (
                _f("grid_code", "str", None, "grid cell code"),
                _NAME,
                _f("district_code", "str", None, "district the cell belongs to"),
                _f("unit", "str", None, "responsible unit (责任单位)"),
            ),
        ),
        LayerKind(
            "poi",
            "point",
            Category.PUBLIC_THEMATIC,
            Classification.PUBLIC,
            "point of interest (兴趣点)",
            (_NAME, _f("poi_type", "str", None, "type"), _f("address", "str", None, "address")),
        ),
        LayerKind(
            "water",
            "polygon",
            Category.SPATIO_TEMPORAL_BASE,
            Classification.PUBLIC,
            "water body (水系: river, lake, pond, canal), part of the base map (基础地理信息)",
            (
                _NAME,
                _f("water_type", "str", None, "河流 river, 湖泊 lake, 坑塘 pond, 沟渠 canal"),
            ),
        ),
        LayerKind(
            "address",
            "point",
            Category.PUBLIC_THEMATIC,
            Classification.PUBLIC,
            "standard address (标准地址): a point per 门牌, building, unit or room",
            (
                _f("address", "str", None, "full address", required=True),
                _NAME,
                *(_f(level, "str", None, desc) for level, desc in ADDRESS_LEVELS),
                _f("building_id", "str", None, "id of the building it belongs to"),
            ),
        ),
    )
}


def get_kind(name: str) -> LayerKind:
    """Return the kind called ``name``.

    Raises
    ------
    UsageError
        When no such kind exists; the message lists the kinds that do.

    Examples
    --------
    >>> get_kind("building").category.label_zh
    '时空基础'
    """
    try:
        return KINDS[name]
    except KeyError:
        raise UsageError(
            f"unknown layer kind {name!r}: use one of {', '.join(sorted(KINDS))}"
        ) from None
