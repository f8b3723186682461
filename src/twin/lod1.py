"""LOD1 block buildings: footprints extruded from ``ground_m`` to ``ground_m + height_m``.

:func:`lod1_blocks` builds, for every building at once, the prisms' vertices
(each footprint ring once at the bottom, once at the top) and their surfaces
as rings of vertex indices, oriented outwards: the roof's exterior ring
counter-clockwise seen from above, the floor reversed, one quad wall per ring
edge (hole walls face into the hole). Multipolygons give one solid per part;
holes stay holes. These are the surfaces CityJSON stores;
:func:`solid_mesh` triangulates one solid for trimesh and glTF.

Examples
--------
>>> import geopandas as gpd, shapely
>>> b = gpd.GeoDataFrame({"height_m": [10.0], "ground_m": [500.0]},
...     geometry=[shapely.box(0, 0, 10, 20).difference(shapely.box(4, 4, 6, 6))],
...     index=["buildings.B1"])
>>> blocks = lod1_blocks(b)
>>> mesh = solid_mesh(blocks, 0)
>>> bool(mesh.is_watertight), round(float(mesh.volume), 6)
(True, 1960.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import trimesh

from twin.errors import SchemaError
from twin.indicators import building_heights

__all__ = ["Blocks", "block_heights", "lod1_blocks", "part_triangles", "solid_mesh"]


@dataclass
class Blocks:
    """Every LOD1 solid of a building layer.

    ``vertices`` (n, 3) in the twin CRS; per building ``uids[i]``, its parts
    ``parts_of[i]`` (list of part numbers); per part the ring numbers
    ``rings_of_part[p]``; per ring the vertex range ``ring_start[r]`` …
    ``ring_start[r] + ring_size[r]`` at the bottom, offset by ``top_offset`` at the top.
    """

    uids: np.ndarray
    vertices: np.ndarray
    top_offset: int
    ring_start: np.ndarray
    ring_size: np.ndarray
    part_rings: np.ndarray  # (parts + 1,) offsets into the ring list
    building_parts: np.ndarray  # (buildings + 1,) offsets into the part list
    ground_m: np.ndarray
    height_m: np.ndarray
    height_source: np.ndarray

    def __len__(self) -> int:
        return len(self.uids)

    def parts(self, building: int) -> range:
        return range(int(self.building_parts[building]), int(self.building_parts[building + 1]))

    def surfaces(
        self, part: int, *, shift: int = 0, top_offset: int | None = None
    ) -> list[list[list[int]]]:
        """The part's surfaces, each a list of rings of vertex indices (exterior first).

        ``shift`` is subtracted from every bottom index and ``top_offset``
        (default: the global one) added for the top: a building's own
        numbering is ``shift`` = its first vertex, ``top_offset`` = its vertex count.
        """
        lift = self.top_offset if top_offset is None else top_offset
        rings = range(int(self.part_rings[part]), int(self.part_rings[part + 1]))
        bottoms = [self.ring(r, shift=shift) for r in rings]
        tops = [[i + lift for i in ring] for ring in bottoms]
        surfaces = [[ring[::-1] for ring in bottoms], tops]
        for ring in bottoms:
            following = [*ring[1:], ring[0]]
            surfaces.extend(
                [[a, b, b + lift, a + lift]] for a, b in zip(ring, following, strict=True)
            )
        return surfaces

    def vertex_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per building, its first and past-the-last bottom vertex (its rings are contiguous)."""
        first_ring = self.part_rings[self.building_parts[:-1]]
        last_ring = self.part_rings[self.building_parts[1:]] - 1
        return self.ring_start[first_ring], self.ring_start[last_ring] + self.ring_size[last_ring]

    def part_polygon(self, part: int) -> shapely.Polygon:
        """The part's footprint as an oriented polygon (its exterior counter-clockwise)."""
        rings = [
            self.vertices[int(self.ring_start[r]) : int(self.ring_start[r] + self.ring_size[r]), :2]
            for r in range(int(self.part_rings[part]), int(self.part_rings[part + 1]))
        ]
        return shapely.Polygon(rings[0], rings[1:])

    def ring(self, ring: int, *, shift: int = 0) -> list[int]:
        """Bottom vertex indices of one ring (add ``top_offset`` for the top)."""
        start = int(self.ring_start[ring]) - shift
        return list(range(start, start + int(self.ring_size[ring])))


def block_heights(buildings: pd.DataFrame, *, storey_m: float = 3.0) -> pd.DataFrame:
    """``ground_m``, ``height_m`` and where the height came from, per building.

    ``height_m`` when known (``height_source`` kept when the layer has one,
    e.g. ``dsm``), else floors × ``storey_m`` (``floors``); ``ground_m`` 0 where unknown.
    """
    heights = building_heights(buildings, floor_height_m=storey_m)
    source = heights["height_source"].astype(object)
    if "height_source" in buildings.columns:
        stored = buildings["height_source"].astype(object)
        source = source.where(~((source == "height") & stored.notna()), stored)
    ground = (
        pd.to_numeric(buildings["ground_m"], errors="coerce").fillna(0.0)
        if "ground_m" in buildings.columns
        else pd.Series(0.0, index=buildings.index)
    )
    return pd.DataFrame(
        {"ground_m": ground, "height_m": heights["height_m"], "height_source": source},
        index=buildings.index,
    )


def lod1_blocks(buildings: gpd.GeoDataFrame, *, storey_m: float = 3.0) -> Blocks:
    """Extrude every building with a known height and a polygonal footprint.

    The footprints' coordinates come out of shapely in one pass and the
    rings are oriented with numpy (shoelace signs), so a million footprints
    take no Python loop.

    Raises
    ------
    SchemaError
        When no building has a height (``height_m`` or ``floors``).
    """
    heights = block_heights(buildings, storey_m=storey_m)
    geoms = np.asarray(buildings.geometry.array)
    usable = (
        heights["height_m"].gt(0).to_numpy()
        & np.isin(shapely.get_type_id(geoms), [3, 6])
        & ~shapely.is_empty(geoms)
    )
    if not usable.any():
        raise SchemaError("no building has a height: run twin heights, or give height_m or floors")
    chosen = np.flatnonzero(usable)
    coords, ring_offsets, part_rings, building_parts = _ragged(geoms[chosen])
    coords, ring_size = _oriented_open_rings(coords, ring_offsets, part_rings)
    ring_start = np.concatenate([[0], np.cumsum(ring_size)[:-1]])
    ring_part = np.repeat(np.arange(len(part_rings) - 1), np.diff(part_rings))
    owner = np.repeat(np.arange(len(chosen)), np.diff(building_parts))
    coord_ring = np.repeat(np.arange(len(ring_size)), ring_size)
    ground = heights["ground_m"].to_numpy(dtype=float)[chosen]
    height = heights["height_m"].to_numpy(dtype=float)[chosen]
    z_bottom = ground[owner][ring_part][coord_ring]
    z_top = z_bottom + height[owner][ring_part][coord_ring]
    vertices = np.vstack([np.column_stack([coords, z_bottom]), np.column_stack([coords, z_top])])
    return Blocks(
        uids=buildings.index.to_numpy()[chosen],
        vertices=vertices,
        top_offset=len(coords),
        ring_start=ring_start,
        ring_size=ring_size,
        part_rings=part_rings,
        building_parts=building_parts,
        ground_m=ground,
        height_m=height,
        height_source=heights["height_source"].to_numpy()[chosen],
    )


def _ragged(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (closed rings), ring offsets, rings per part, parts per footprint.

    Counted with shapely's vectorised counters; ring objects are made only for
    the few parts with holes.
    """
    parts = shapely.get_parts(geoms)
    building_parts = np.concatenate([[0], np.cumsum(shapely.get_num_geometries(geoms))])
    holes = shapely.get_num_interior_rings(parts)
    part_rings = np.concatenate([[0], np.cumsum(holes + 1)])
    ring_size = np.repeat(shapely.get_num_coordinates(parts), holes + 1)
    holed = holes > 0
    if holed.any():
        slots = np.repeat(holed, holes + 1)
        ring_size[slots] = shapely.get_num_coordinates(shapely.get_rings(parts[holed]))
    ring_offsets = np.concatenate([[0], np.cumsum(ring_size)])
    return shapely.get_coordinates(geoms), ring_offsets, part_rings, building_parts


def _oriented_open_rings(
    coords: np.ndarray, ring_offsets: np.ndarray, part_rings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rings without their closing point, exteriors counter-clockwise and holes clockwise.

    A reversed ring keeps its first point (as GEOS reverses a closed ring).
    """
    size_closed = np.diff(ring_offsets)
    starts = ring_offsets[:-1]
    ring_of = np.repeat(np.arange(len(size_closed)), size_closed)
    local = coords - coords[starts][ring_of]  # small numbers: an exact enough shoelace
    following = np.roll(local, -1, axis=0)
    cross = local[:, 0] * following[:, 1] - following[:, 0] * local[:, 1]
    cross[ring_offsets[1:] - 1] = 0.0  # the closing point pairs with the next ring
    area2 = np.add.reduceat(cross, starts)
    exterior = np.zeros(len(size_closed), dtype=bool)
    exterior[part_rings[:-1]] = True
    flip = np.where(exterior, area2 < 0, area2 > 0)
    size = size_closed - 1
    position = np.arange(len(coords)) - starts[ring_of]  # 0 … size (the closing point)
    keep = position < size[ring_of]
    ring_of, position = ring_of[keep], position[keep]
    flipped = flip[ring_of] & (position > 0)
    position = np.where(flipped, size[ring_of] - position, position)
    return coords[starts[ring_of] + position], size


def part_triangles(blocks: Blocks, part: int) -> np.ndarray:
    """Triangles (k, 3) of vertex indices closing one part: roof, floor and walls, outwards."""
    polygon = blocks.part_polygon(part)
    rings = range(int(blocks.part_rings[part]), int(blocks.part_rings[part + 1]))
    index = {}
    for r in rings:
        for i in blocks.ring(r):
            index[(float(blocks.vertices[i, 0]), float(blocks.vertices[i, 1]))] = i
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(polygon))
    corners = shapely.get_coordinates(shapely.get_exterior_ring(triangles)).reshape(-1, 4, 2)[:, :3]
    roof = np.array([[index[(float(x), float(y))] for x, y in tri] for tri in corners])
    u, v = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area2 = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    roof = np.where((area2 < 0)[:, None], roof[:, ::-1], roof)
    walls = []
    for r in rings:
        ring = np.array(blocks.ring(r))
        following = np.roll(ring, -1)
        top, top_next = ring + blocks.top_offset, following + blocks.top_offset
        walls.append(np.column_stack([ring, following, top_next]))
        walls.append(np.column_stack([ring, top_next, top]))
    return np.vstack([roof + blocks.top_offset, roof[:, ::-1], *walls])


def solid_mesh(blocks: Blocks, building: int) -> trimesh.Trimesh:
    """One building's solid (all its parts) as a trimesh mesh with its own vertices."""
    faces = np.vstack([part_triangles(blocks, p) for p in blocks.parts(building)])
    used, local = np.unique(faces, return_inverse=True)
    return trimesh.Trimesh(
        vertices=blocks.vertices[used], faces=local.reshape(faces.shape), process=False
    )
