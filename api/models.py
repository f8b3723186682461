"""Response models of the OGC API Features routes (shapes as pygeoapi serves them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    """A link of the OGC API link model."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(BaseModel):
    """The landing page: what the service is and where to go."""

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    """The conformance classes the service implements."""

    conformsTo: list[str]


class SpatialExtent(BaseModel):
    bbox: list[list[float]]
    crs: str


class TemporalExtent(BaseModel):
    interval: list[list[str | None]]
    trs: str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


class Extent(BaseModel):
    spatial: SpatialExtent
    temporal: TemporalExtent | None = None


class Collection(BaseModel):
    """One layer the caller may read, as an OGC collection."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    description: str
    itemType: str = "feature"
    extent: Extent | None = None
    crs: list[str]
    storageCrs: str
    links: list[Link]
    kind: str = Field(description="The twin layer kind (building, parcel, pipe…).")
    classification: str = Field(description="public, internal or restricted (数据分级).")
    category: str = Field(description="CIM data category.")
    featureCount: int


class Collections(BaseModel):
    """Every collection the caller may read."""

    links: list[Link]
    collections: list[Collection]


class Feature(BaseModel):
    """A GeoJSON Feature; ``id`` is the twin uid."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None
    links: list[Link] | None = None


class FeatureCollection(BaseModel):
    """A page of features, with paging links."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[Feature]
    links: list[Link] | None = None
    numberMatched: int | None = None
    numberReturned: int | None = None
    timeStamp: str | None = None


class SnapshotSwap(BaseModel):
    """When the worker's last reload went into force (wall-clock seconds since the epoch)."""

    version: str = Field(description="The version the new snapshot serves.")
    heard_at: float = Field(description="When the change was heard (a commit's NOTIFY).")
    swapped_at: float = Field(description="When requests started using the new snapshot.")
    update_s: float = Field(description="Seconds from heard_at to swapped_at.")
    update_cpu_s: float | None = Field(
        None, description="CPU seconds the reloading thread spent from heard_at to swapped_at."
    )
    paused_s: float | None = Field(
        None,
        description="How long the worker took no requests while it updated "
        "(TWIN_API_RELOAD_PAUSE_S at most; null when it does not pause).",
    )
    updates: dict[str, str] = Field(
        default_factory=dict,
        description='What the reload did to each layer the caller may see: "kept", '
        '"patched" (the rows its imports changed) or "read: <why it was read whole>".',
    )


class Health(BaseModel):
    """What the service has loaded."""

    twin: str
    layers: int
    loaded_at: str
    load_s: float
    reloads: int
    last_reload_error: str | None
    version: str = Field(description="The snapshot's version (a PostGIS twin's commit counter).")
    worker: int = Field(description="The process id of the worker that answered.")
    listening: bool | None = Field(
        None, description="PostGIS twins: whether the worker's LISTEN connection is up."
    )
    subscriptions: int | None = Field(
        None, description="PostGIS twins: how many times the worker (re)subscribed to commits."
    )
    snapshot: SnapshotSwap | None = Field(
        None, description="The last reload's timing (null until the worker reloaded)."
    )
