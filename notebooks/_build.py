"""Write the notebooks from their cell sources (run: python notebooks/_build.py).

Keeping the cells here keeps notebook diffs reviewable; CI executes the
written ``.ipynb`` files with nbclient (tests/test_notebooks.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

GETTING_STARTED = [
    new_markdown_cell(
        "# Getting started with citytwin\n\n"
        "Build the sample district's twin (a synthetic district in Chengdu, 成都) from the "
        "delivery files in `data/samples`, list its layers, look at one on a map and read its "
        "history. The same steps work on any delivery: only the mapping file changes."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import twin\n\n"
        "samples = Path('..') / 'data' / 'samples'\n"
        "workdir = Path(tempfile.mkdtemp())\n"
        "city = twin.Twin.create(workdir / 'chengdu.twin.gpkg', crs='auto')\n"
        "reports = city.import_mapping(samples / 'mapping.yaml')\n"
        "for report in reports:\n"
        "    print(report.summary)"
    ),
    new_markdown_cell(
        "`crs='auto'` chose the CGCS2000 3-degree Gauss-Krüger zone from the data's longitude "
        "(104°E → central meridian 105°E, EPSG:4544). Each layer has a kind, a CIM data "
        "category and a classification (pipes, valves and cameras are restricted)."
    ),
    new_code_cell(
        "import pandas as pd\n\n"
        "print(city.crs.name)\n"
        "pd.DataFrame([\n"
        "    {'layer': i.name, 'kind': i.kind, 'category': f'{i.category_zh} {i.category}',\n"
        "     'classification': i.classification, 'features': i.feature_count}\n"
        "    for i in city.layer_infos()\n"
        "])"
    ),
    new_markdown_cell("## A layer is a GeoDataFrame, indexed by its stable uid"),
    new_code_cell(
        "buildings = city.layer('buildings')\n"
        "buildings[['floors', 'height_m', 'name', 'use']].head()"
    ),
    new_code_cell(
        "legend = {'title': 'land use (GB 50137)', 'loc': 'upper left', 'bbox_to_anchor': (1, 1)}\n"
        "ax = city.layer('parcels').plot(column='land_use', figsize=(9, 8), alpha=0.35,\n"
        "                                legend=True, legend_kwds=legend)\n"
        "city.layer('roads').plot(ax=ax, color='grey', linewidth=0.6)\n"
        "buildings.plot(ax=ax, column='floors', cmap='viridis', linewidth=0)\n"
        "ax.set_axis_off()\n"
        "ax.set_title('Sample district: parcels, roads and buildings by floors');"
    ),
    new_markdown_cell(
        "## Provenance and history\n\n"
        "Every import is recorded with its source, checksum, field mapping and counts. "
        "Re-importing an updated delivery records a change set and keeps replaced versions."
    ),
    new_code_cell(
        "city.imports()[['layer', 'time', 'source_format', 'n_read', 'n_imported', 'n_rejected']]"
    ),
    new_code_cell(
        "# An updated delivery: two buildings re-surveyed, one demolished.\n"
        "import geopandas as gpd\n\n"
        "delivery = gpd.read_file(samples / 'buildings.geojson')\n"
        "first_import = city.imports(layer='buildings').iloc[-1]['time']\n"
        "delivery.loc[delivery.index[:2], '层数'] = 30\n"
        "delivery = delivery.drop(index=delivery.index[2])\n"
        "delivery.to_file(workdir / 'buildings_v2.geojson')\n\n"
        "# Same layer, same field mapping as the first import: only the source changes.\n"
        "spec = twin.read_mapping(samples / 'mapping.yaml')['buildings']\n"
        "spec.source = workdir / 'buildings_v2.geojson'\n"
        "report = city.import_spec(spec)\n"
        "print(report.summary)\n"
        "city.changes(report.import_id)"
    ),
    new_code_cell(
        "# The layer as it was before the update, from the history.\n"
        "before = city.layer('buildings', as_of=first_import)\n"
        "print(len(before), 'buildings before,', len(city.layer('buildings')), 'now')\n"
        "city.history('buildings')[['uid', 'floors', 'valid_from', 'valid_to', 'change']]"
    ),
]


PLANNING_INDICATORS = [
    new_markdown_cell(
        "# Planning indicators, sensing coverage and plan compliance\n\n"
        "FAR (容积率), building coverage (建筑密度) and heights by management grid cell, the "
        'places no sensor of a type covers (the "insufficient sensing coverage" map), and '
        "the parcels and buildings that break their planning controls (规划管控)."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import twin\n"
        "from twin.indicators import coverage_gaps\n\n"
        "city = twin.Twin.create(Path(tempfile.mkdtemp()) / 'chengdu.twin.gpkg', crs='auto')\n"
        "city.import_mapping(Path('..') / 'data' / 'samples' / 'mapping.yaml')\n"
        "report = city.build()  # relations: building -> parcel, sensor -> building, -> grid\n"
        "print(len(report.recomputed), 'relations built')"
    ),
    new_markdown_cell("## Indicators by grid cell"),
    new_code_cell(
        "grid = city.indicators(by='grid')\n"
        "grid[['building_count', 'far', 'coverage', 'height_max_m', 'sensors_smoke_count',\n"
        "      'roads_km', 'water_pipes_km']].describe().round(3)"
    ),
    new_code_cell(
        "ax = grid.plot(column='far', cmap='OrRd', legend=True, figsize=(8, 7),\n"
        "               legend_kwds={'label': 'FAR (floor area ratio) by grid cell'})\n"
        "city.layer('roads').plot(ax=ax, color='grey', linewidth=0.4)\n"
        "ax.set_axis_off()"
    ),
    new_markdown_cell(
        "## Where no water-pressure sensor reaches\n\n"
        "Each sensor covers its sensing radius (from the sensor, else the type's default); "
        "the gaps are the parts of each cell no sensor of the type covers."
    ),
    new_code_cell(
        "kind = 'water_pressure'\n"
        "gaps = coverage_gaps(city.layer('grids'), city.layer('sensors'), kind)\n"
        "share = gaps['gap_m2'].sum() / grid['area_m2'].sum()\n"
        "print(f'{share:.1%} of the district is out of reach of any {kind} sensor')\n"
        "ax = city.layer('grids').boundary.plot(color='black', linewidth=0.5, figsize=(8, 7))\n"
        "gaps[gaps['gap_m2'] > 0].plot(ax=ax, color='crimson', alpha=0.5)\n"
        "city.layer('sensors').query('sensor_type == @kind').plot(ax=ax, markersize=4)\n"
        "ax.set_title('Water-pressure sensing gaps (red)')\n"
        "ax.set_axis_off()"
    ),
    new_markdown_cell("## Plan compliance"),
    new_code_cell(
        "violations = city.check()  # FAR, coverage, height limits, buildings on no parcel\n"
        "print(violations['check'].value_counts().to_dict())\n"
        "violations.drop(columns='geometry').head(10)"
    ),
]


OPERATIONS = [
    new_markdown_cell(
        "# Operations centre: a burst main, a road closure and their cascade\n"
        "\n"
        "The questions an operations centre (一网统管) asks when something breaks: which valves "
        "to close (关阀) when a water main bursts (爆管) and which buildings lose water; how "
        "long a fire engine takes to reach every building and what a road closure (道路封闭) "
        "does to that; what the works on a burst main do to the streets above it; and, on "
        "the one map (城市一张图), what is at a point and what the twin knows about a parcel. "
        "Every step uses the library calls documented in `docs/pipes.md`, `docs/roads.md` "
        "and `docs/api.md`, on the sample district."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n"
        "\n"
        "import pandas as pd\n"
        "\n"
        "import twin\n"
        "\n"
        'path = Path(tempfile.mkdtemp()) / "chengdu.twin.gpkg"\n'
        'city = twin.Twin.create(path, crs="auto")\n'
        'city.import_mapping(Path("..") / "data" / "samples" / "mapping.yaml")\n'
        "report = city.build()  # stores each building's service connection on every pipe "
        "network\n"
        'buildings = city.layer("buildings")\n'
        'print(len(buildings), "buildings,", len(report.recomputed), "relations built")'
    ),
    new_markdown_cell(
        "## 1. A water main bursts (爆管)\n"
        "\n"
        "The water network is cut into isolation segments at the operable valves. A break on "
        "a pipe shuts its segment: the valves bounding it must be closed (关阀), every pipe "
        "inside is isolated, and the buildings served from those pipes lose water. If a "
        "valve fails to close (seized, buried), the isolation grows to the next valves: "
        "`failed_valves` lists the extra valves and the extra buildings."
    ),
    new_code_cell(
        "# the uid names the layer (water_pipes) and so the network (water)\n"
        'result = city.pipe_break("water_pipes.JS000123", failed_valves=["valves.JSF000039"])\n'
        "print(result.summary.service_connections)\n"
        "result.summary.valves_to_close, result.summary.extra_valves"
    ),
    new_code_cell('pd.Series({k: v for k, v in result.summary.items() if k != "warnings"})'),
    new_code_cell("result.buildings.head()  # uid -> pipe, reason (isolated / cut_off)"),
    new_markdown_cell(
        "The map for the crew: isolated pipes in red, valves to close as black crosses (the "
        "extra ones because of the failed valve in blue), the failed valve in magenta, and "
        "the buildings losing service in orange (those lost only because of the failed valve "
        "in gold), over every building in grey."
    ),
    new_code_cell(
        "from matplotlib.lines import Line2D\n"
        "\n"
        "extra = result.extra_buildings.index\n"
        "lost_first = result.buildings.index.difference(extra)\n"
        'ax_break = buildings.plot(color="lightgrey", linewidth=0, figsize=(9, 8))\n'
        'city.layer("water_pipes").plot(ax=ax_break, color="lightsteelblue", linewidth=0.5)\n'
        'buildings.loc[lost_first].plot(ax=ax_break, color="darkorange", linewidth=0, '
        'label="no water")\n'
        'buildings.loc[extra].plot(ax=ax_break, color="gold", linewidth=0, label="no water '
        '(failed valve)")\n'
        'result.isolated_pipes.plot(ax=ax_break, color="crimson", linewidth=1.5)\n'
        "result.valves_to_close.plot(\n"
        '    ax=ax_break, color="black", marker="x", markersize=30, label="valves to close"\n'
        ")\n"
        "result.extra_valves.plot(\n"
        '    ax=ax_break, color="royalblue", marker="x", markersize=30, label="extra valves"\n'
        ")\n"
        'city.layer("valves").loc[["valves.JSF000039"]].plot(\n'
        '    ax=ax_break, color="magenta", marker="X", markersize=90\n'
        ")\n"
        "handles = [\n"
        '    Line2D([], [], color="crimson", label="isolated pipes"),\n'
        '    Line2D([], [], color="black", marker="x", ls="", label="valves to close"),\n'
        '    Line2D([], [], color="royalblue", marker="x", ls="", label="extra valves"),\n'
        '    Line2D([], [], color="magenta", marker="X", ls="", label="failed valve"),\n'
        '    Line2D([], [], color="darkorange", marker="s", ls="", label="no water"),\n'
        '    Line2D([], [], color="gold", marker="s", ls="", label="no water (failed '
        'valve)"),\n'
        "]\n"
        'ax_break.legend(handles=handles, loc="upper left", bbox_to_anchor=(1, 1))\n'
        'ax_break.set_title("Burst on water_pipes.JS000123, valve JSF000039 fails")\n'
        "ax_break.set_axis_off()"
    ),
    new_markdown_cell(
        "Before anything bursts: every isolation segment ranked by the buildings and pipe "
        "length its isolation takes out, to decide where a valve is worth adding."
    ),
    new_code_cell(
        "from twin.network import building_connections, criticality\n"
        "\n"
        'net = city.pipe_network("water")\n'
        "ranking = criticality(net, connections=building_connections(city, net))  # GeoDataFrame\n"
        'ranking.drop(columns="geometry").head()'
    ),
    new_markdown_cell(
        "## 2. Emergency access and a road closure (道路封闭)\n"
        "\n"
        "The road layer becomes a directed, timed graph (one-way streets, bridges, speeds by "
        "road class). Every building is linked to its nearest road; the fire stations (消防站) "
        "are selected from the facilities layer. The service areas give each building its "
        "nearest station and the time a fire engine needs to reach it."
    ),
    new_code_cell(
        'FIRE = "poi_type=消防站"  # the fire stations among the facilities\n'
        "areas = city.service_area(where=FIRE, max_time_s=180)  # .buildings, .facilities, "
        ".reach, .summary\n"
        'fire = city.layer("facilities").query("poi_type == \'消防站\'")\n'
        "print(areas.summary)\n"
        'areas.facilities[["name", "buildings", "within"]]'
    ),
    new_code_cell(
        'timed = buildings[["geometry"]].join(areas.buildings[["facility", "time_s"]])\n'
        "ax_service = timed.plot(\n"
        '    column="time_s",\n'
        '    cmap="viridis_r",\n'
        "    linewidth=0,\n"
        "    figsize=(9, 8),\n"
        "    legend=True,\n"
        '    legend_kwds={"label": "fire engine travel time (s)"},\n'
        ")\n"
        'city.layer("roads").plot(ax=ax_service, color="grey", linewidth=0.4)\n'
        'fire.plot(ax=ax_service, color="red", marker="*", markersize=250, edgecolor="black")\n'
        'ax_service.set_title("Nearest fire station: travel time to every building")\n'
        "ax_service.set_axis_off()"
    ),
    new_markdown_cell(
        "Closing a road does not rebuild the graph: the closed edges become impassable and "
        "the same search runs again. Every building gets its time before and after and its "
        "detour (infinite when no station can reach it any more); a building whose access "
        "point lies on the closed road is cut off (`lost`). `closure.affected()` keeps the "
        "buildings whose access changed: cut off, or delayed by a detour."
    ),
    new_code_cell(
        'closure = city.road_closure(["roads.DL000002"], where=FIRE, max_time_s=180)\n'
        "print(closure.summary)\n"
        'closure.buildings.sort_values("detour_s", ascending=False).head()  # every building'
    ),
    new_code_cell(
        "affected = closure.affected()  # the buildings whose access changed\n"
        'lost = affected.index[affected["lost"]]\n'
        'slower = affected.index[~affected["lost"]]\n'
        'ax_closure = buildings.plot(color="lightgrey", linewidth=0, figsize=(9, 8))\n'
        'city.layer("roads").plot(ax=ax_closure, color="grey", linewidth=0.4)\n'
        'buildings.loc[lost].plot(ax=ax_closure, color="crimson", linewidth=0, label="cut '
        'off")\n'
        'buildings.loc[slower].plot(ax=ax_closure, color="darkorange", linewidth=0, '
        'label="delayed")\n'
        'closure.closed.plot(ax=ax_closure, color="black", linewidth=3)\n'
        "ax_closure.set_title(\n"
        '    f"roads.DL000002 closed: {len(lost)} buildings cut off (red), {len(slower)} '
        'delayed (orange)"\n'
        ")\n"
        "ax_closure.set_axis_off()"
    ),
    new_markdown_cell(
        "Which single closures would hurt most? The roads carrying the most buildings' "
        "fastest routes are closed one at a time and ranked."
    ),
    new_code_cell(
        "from twin.network import road_access, road_criticality, select_facilities\n"
        "\n"
        "access = road_access(\n"
        '    city.road_network(), buildings, select_facilities(city.layer("facilities"), FIRE)\n'
        ")\n"
        "road_criticality(access, candidates=20, max_time_s=180).head()"
    ),
    new_markdown_cell(
        "## 3. The cascade: a burst main closes the streets above it\n"
        "\n"
        "Repairing a burst main means digging: every road with at least `min_overlap_m` of "
        "its length within `distance_m` of the isolated pipes is closed while the works "
        "last, and the fire stations' access is computed again."
    ),
    new_code_cell(
        "works = city.cascade(\n"
        '    "water_pipes.JS000024", where=FIRE, distance_m=10, min_overlap_m=15, max_time_s=120\n'
        ")\n"
        "broken, summary = works.pipe_break, works.summary\n"
        "print(\n"
        '    len(summary["valves_to_close"]),\n'
        '    "valves to close,",\n'
        '    summary["pipes_isolated"],\n'
        '    "pipes isolated,",\n'
        '    summary["buildings_without_service"],\n'
        '    "buildings without water",\n'
        ")\n"
        'print(len(summary["roads_closed"]), "roads closed while the works last")\n'
        'pd.Series(summary["road_closure"])'
    ),
    new_code_cell(
        'cut = [a["building"] for a in summary["access_affected"] if a["lost"]]\n'
        'delayed = [a["building"] for a in summary["access_affected"] if not a["lost"]]\n'
        'ax_cascade = buildings.plot(color="lightgrey", linewidth=0, figsize=(9, 8))\n'
        'city.layer("roads").plot(ax=ax_cascade, color="grey", linewidth=0.4)\n'
        'buildings.loc[cut].plot(ax=ax_cascade, color="crimson", linewidth=0, label="cut '
        'off")\n'
        'buildings.loc[delayed].plot(ax=ax_cascade, color="darkorange", linewidth=0, '
        'label="delayed")\n'
        'works.closure.closed.plot(ax=ax_cascade, color="black", linewidth=3)\n'
        'broken.isolated_pipes.plot(ax=ax_cascade, color="royalblue", linewidth=1)\n'
        "ax_cascade.set_title(\n"
        '    "Burst on JS000024: roads closed (black), fire access cut (red) or delayed '
        '(orange)"\n'
        ")\n"
        "ax_cascade.set_axis_off()"
    ),
    new_markdown_cell(
        "## 4. One-map queries (城市一张图)\n"
        "\n"
        "`twin serve` answers the web map from a `CityIndex`; the same functions work in a "
        "notebook. A click on the map arrives as longitude/latitude: here the centroid of a "
        "building, converted from the twin's CRS to CGCS2000 (EPSG:4490) longitude/latitude."
    ),
    new_code_cell(
        "from twin.query.identify import identify\n"
        "from twin.query.impact import pipe_break_impact\n"
        "from twin.query.index import CityIndex\n"
        "from twin.query.profile import profile\n"
        "\n"
        "index = CityIndex.load(path)\n"
        "clicked = "
        'buildings.loc[["buildings.JZ0000101"]].centroid.to_crs("EPSG:4490").iloc[0]\n'
        'hits = identify(index, clicked.x, clicked.y, crs="EPSG:4490")\n'
        'print(f"lon {clicked.x:.5f}, lat {clicked.y:.5f}")\n'
        '{layer: hits.uids(layer) for layer in ("parcels", "buildings", "grids", '
        '"districts")}'
    ),
    new_code_cell(
        'parcel = hits.uids("parcels")[0]\n'
        'card = profile(index, "parcels", parcel)\n'
        'print(parcel, "holds", len(card.group("buildings")), "buildings")\n'
        "pd.Series(card.indicators)"
    ),
    new_markdown_cell(
        "The burst of section 1 asked of the index (what `twin serve` answers over HTTP): "
        "the extra buildings a failed valve adds."
    ),
    new_code_cell(
        'impact = pipe_break_impact(index, "water_pipes.JS000123", '
        'failed_valves=["valves.JSF000039"])\n'
        'impact.summary()["extra_buildings"]'
    ),
]


THREE_D_AND_FLOOD = [
    new_markdown_cell(
        "# The twin in 3D: heights, LOD1 blocks, flooding (三维与内涝)\n\n"
        "Import the sample district's DEM and DSM as raster layers, measure every building's "
        "height from them, flag the buildings whose floors disagree, look at the LOD1 blocks, "
        "export CityJSON and 3D Tiles, and flood the river valley at two water levels: which "
        "buildings stand in water, which roads close, and who loses access to hospitals and "
        "fire stations."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import twin\n"
        "from twin.raster import import_raster, read_raster\n\n"
        "samples = Path('..') / 'data' / 'samples'\n"
        "workdir = Path(tempfile.mkdtemp())\n"
        "city = twin.Twin.create(workdir / 'chengdu.twin.gpkg', crs='EPSG:4544')\n"
        "city.import_mapping(samples / 'mapping.yaml',\n"
        "                    layers=['parcels', 'buildings', 'roads', 'facilities', 'districts'])\n"
        "for name in ('dem', 'dsm'):\n"
        "    print(import_raster(city, samples / f'{name}.tif', layer=name, kind=name).summary())"
    ),
    new_markdown_cell(
        "## Heights from DSM − DEM\n\n"
        "`height_m` becomes the 90th percentile of DSM − DEM over the cells whose centre lies "
        "in the footprint (robust to edge cells and antennas), `ground_m` the lowest DEM cell. "
        "The update is an import: the declared heights stay in the history."
    ),
    new_code_cell(
        "from twin.heights import apply_heights\n\n"
        "report, measured = apply_heights(city, layer='buildings', dsm='dsm', dem='dem')\n"
        "print(report)\n"
        "flagged = measured[measured['floors_flag'] != '']\n"
        "flagged.sort_values('difference_m', ascending=False).head(8)"
    ),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "dem, dsm = read_raster(city, 'dem'), read_raster(city, 'dsm')\n"
        "buildings = city.layer('buildings')\n"
        "fig, ax = plt.subplots(figsize=(10, 8))\n"
        "left, bottom, right, top = dem.bounds\n"
        "shown = ax.imshow(dem.values, extent=(left, right, bottom, top), cmap='terrain')\n"
        "fig.colorbar(shown, ax=ax, shrink=0.6, label='ground elevation (m)')\n"
        "buildings.plot(ax=ax, color='white', linewidth=0, alpha=0.7)\n"
        "buildings.loc[flagged.index].plot(ax=ax, color='red', linewidth=0,\n"
        "                                   label='floors disagree')\n"
        "ax.set_title(f'{len(flagged)} buildings taller than their floors allow (red)')\n"
        "ax.set_axis_off();"
    ),
    new_markdown_cell(
        "## LOD1 blocks\n\n"
        "Every footprint is extruded from `ground_m` to `ground_m + height_m` into a closed "
        "solid (holes and multipolygons included). A rendered view of the tallest district:"
    ),
    new_code_cell(
        "from mpl_toolkits.mplot3d.art3d import Poly3DCollection\n\n"
        "from twin.city3d import districts_of\n"
        "from twin.lod1 import lod1_blocks, solid_mesh\n\n"
        "district = districts_of(city, buildings)\n"
        "busiest = district.value_counts().index[0]\n"
        "blocks = lod1_blocks(buildings[district == busiest])\n"
        "print(busiest, len(blocks), 'blocks; all watertight:',\n"
        "      all(solid_mesh(blocks, i).is_watertight for i in range(len(blocks))))\n"
        "faces = [blocks.vertices[ring] for part in range(len(blocks.part_rings) - 1)\n"
        "         for surface in blocks.surfaces(part)[1:] for ring in surface[:1]]\n"
        "fig = plt.figure(figsize=(11, 8))\n"
        "ax3d = fig.add_subplot(projection='3d')\n"
        "ax3d.add_collection3d(Poly3DCollection(faces, facecolor='#d9d2c3', edgecolor='#555',\n"
        "                                        linewidths=0.1))\n"
        "low, high = blocks.vertices.min(axis=0), blocks.vertices.max(axis=0)\n"
        "ax3d.set_xlim(low[0], high[0])\n"
        "ax3d.set_ylim(low[1], high[1])\n"
        "ax3d.set_zlim(low[2], low[2] + max(high[0] - low[0], high[1] - low[1]) / 3)\n"
        "ax3d.view_init(elev=35, azim=-60)\n"
        "ax3d.set_axis_off()\n"
        "ax3d.set_title(f'LOD1 blocks of the busiest district ({len(blocks)} buildings)');"
    ),
    new_markdown_cell(
        "## CityJSON and 3D Tiles\n\n"
        "The same blocks as CityJSON 2.0 (LOD 1.2 solids, quantised vertices, the twin's CRS) "
        "and as 3D Tiles 1.1 (one glb per district, feature ids carrying each uid) for a web "
        "viewer. The command line does the same: `twin export city.gpkg buildings tiles/`."
    ),
    new_code_cell(
        "import json\n\n"
        "from twin.city3d import export_3d\n\n"
        "cityjson = export_3d(city, 'buildings', workdir / 'buildings.city.json')\n"
        "tileset = export_3d(city, 'buildings', workdir / 'tiles' / 'tileset.json')\n"
        "document = json.loads(tileset.read_text())\n"
        "print(cityjson.name, f'{cityjson.stat().st_size / 1e6:.1f} MB')\n"
        "[(c['content']['uri'], c['extras']['district'], c['extras']['buildings'])\n"
        " for c in document['root']['children']]"
    ),
    new_markdown_cell(
        "## Flooding at two water levels (城市内涝)\n\n"
        "The water rises from the river (the `E1` parcels): only ground connected to it "
        "floods, not every low cell. Roads under more than 0.15 m of water close, and the "
        "road-closure analysis tells who can no longer reach a hospital or a fire station."
    ),
    new_code_cell(
        "from twin.flood import flood_impact, inundation\n"
        "from twin.network import road_access, road_network, select_facilities\n\n"
        "parcels = city.layer('parcels')\n"
        "river = parcels[parcels['land_use'] == 'E1']\n"
        "roads = city.layer('roads')\n"
        "net = road_network(city, 'roads')\n"
        "emergency = select_facilities(city.layer('facilities'), 'poi_type=医院,消防站')\n"
        "access = road_access(net, buildings, emergency)\n"
        "impacts = {}\n"
        "for level in (502.5, 503.5):\n"
        "    depth = inundation(dem, level_m=level, water=river)\n"
        "    impacts[level] = flood_impact(depth, buildings, roads, level_m=level, access=access)\n"
        "    print(impacts[level].summary)"
    ),
    new_code_cell(
        "fig, axes = plt.subplots(1, 2, figsize=(16, 7))\n"
        "for ax, (level, impact) in zip(axes, impacts.items(), strict=True):\n"
        "    d = impact.depth\n"
        "    left, bottom, right, top = d.bounds\n"
        "    ax.imshow(d.values, extent=(left, right, bottom, top), cmap='Blues', vmin=0, vmax=4)\n"
        "    buildings.plot(ax=ax, color='lightgrey', linewidth=0)\n"
        "    buildings.loc[impact.buildings.index].plot(ax=ax, color='navy', linewidth=0)\n"
        "    closed = impact.roads.index[impact.roads['impassable']]\n"
        "    roads.plot(ax=ax, color='grey', linewidth=0.5)\n"
        "    roads.loc[closed].plot(ax=ax, color='orange', linewidth=2)\n"
        "    if impact.closure is not None:\n"
        "        lost = impact.closure.buildings.index[impact.closure.buildings['lost']]\n"
        "        buildings.loc[lost].plot(ax=ax, color='red', linewidth=0)\n"
        "    emergency.plot(ax=ax, color='black', marker='P', markersize=60)\n"
        "    s = impact.summary\n"
        "    ax.set_title(f'level {level} m: {s.buildings_flooded} flooded (navy), '\n"
        "                 f'{s.roads_impassable} roads closed (orange), '\n"
        "                 f'{s.buildings_lost_access} cut off (red)')\n"
        "    ax.set_axis_off()"
    ),
    new_code_cell(
        "worst = impacts[503.5]\n"
        "worst.buildings.head(10).join(buildings[['name', 'use', 'height_m']])"
    ),
]


def _write(cells: list, name: str) -> None:
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, HERE / name)


def main() -> None:
    _write(GETTING_STARTED, "01_getting_started.ipynb")
    _write(PLANNING_INDICATORS, "02_planning_indicators.ipynb")
    _write(OPERATIONS, "03_operations.ipynb")
    _write(THREE_D_AND_FLOOD, "05_3d_and_flood.ipynb")
    from cells_04 import OPERATIONS_DAY

    _write(OPERATIONS_DAY, "04_operations_day.ipynb")


if __name__ == "__main__":
    main()
