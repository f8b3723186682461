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
        "    print(report.summary())"
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
        "city.imports()[['layer', 'time', 'source_format', 'n_read', 'n_imported', "
        "'n_rejected']]"
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
        "print(report.summary())\n"
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
        "places no sensor of a type covers (the \"insufficient sensing coverage\" map), and "
        "the parcels and buildings that break their planning controls (规划管控)."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import twin\n"
        "from twin.compliance import plan_compliance\n"
        "from twin.indicators import coverage_gaps\n"
        "from twin.zones import indicators_by_zone\n\n"
        "city = twin.Twin.create(Path(tempfile.mkdtemp()) / 'chengdu.twin.gpkg', crs='auto')\n"
        "city.import_mapping(Path('..') / 'data' / 'samples' / 'mapping.yaml')\n"
        "report = city.build()  # relations: building -> parcel, sensor -> building, -> grid\n"
        "print(len(report.recomputed), 'relations built')"
    ),
    new_markdown_cell("## Indicators by grid cell"),
    new_code_cell(
        "grid = indicators_by_zone(city, 'grid')\n"
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
        "violations = plan_compliance(city.layer('parcels'), city.layer('buildings'))\n"
        "print(violations['check'].value_counts().to_dict())\n"
        "violations.drop(columns='geometry').head(10)"
    ),
]


def _write(cells: list, name: str) -> None:
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, HERE / name)


def main() -> None:
    _write(GETTING_STARTED, "01_getting_started.ipynb")
    _write(PLANNING_INDICATORS, "02_planning_indicators.ipynb")


if __name__ == "__main__":
    main()
