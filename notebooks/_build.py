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


def main() -> None:
    notebook = new_notebook(cells=GETTING_STARTED)
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, HERE / "01_getting_started.ipynb")


if __name__ == "__main__":
    main()
