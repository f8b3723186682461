"""The tables of a twin in PostGIS: one schema per twin, the GeoPackage's tables inside.

Layer tables (``uid`` primary key, the layer's fields, ``valid_from``, ``geom``
with a GiST index) and their ``<layer>__history`` tables are made by the
session as layers are written; the bookkeeping tables below are made when the
twin is created. They hold exactly the GeoPackage's columns (see
:mod:`twin.store.schema`), so a twin copies between the two without loss.

Examples
--------
>>> "twin_relations" in TABLES and "twin_meta" in TABLES
True
"""

from __future__ import annotations

__all__ = ["DELTA_ROWS", "INDEXES", "RELATION_VIEW", "TABLES", "VERSION_TABLE"]

#: Bumped by every commit: the twin's version for caches (see ``PostgisStore.version``).
VERSION_TABLE = "twin_commits"

TABLES = {
    "twin_meta": "CREATE TABLE twin_meta (key text PRIMARY KEY, value text)",
    "twin_layers": """
        CREATE TABLE twin_layers (
            name text PRIMARY KEY,
            kind text NOT NULL,
            category text NOT NULL,
            classification text NOT NULL,
            id_field text,
            geometry_type text,
            feature_count bigint NOT NULL,
            min_x double precision, min_y double precision,
            max_x double precision, max_y double precision,
            source text,
            created text NOT NULL,
            updated text NOT NULL,
            last_import bigint
        )""",
    "twin_imports": """
        CREATE TABLE twin_imports (
            import_id bigint PRIMARY KEY,
            layer text NOT NULL,
            time text NOT NULL,
            source text NOT NULL,
            source_format text,
            checksum text,
            src_crs text,
            options text,
            field_mapping text,
            n_read bigint, n_imported bigint, n_repaired bigint, n_rejected bigint,
            n_added bigint, n_changed bigint, n_removed bigint, n_unchanged bigint,
            initial bigint NOT NULL,
            report text
        )""",
    "twin_changes": """
        CREATE TABLE twin_changes (
            seq bigserial PRIMARY KEY,
            import_id bigint NOT NULL,
            layer text NOT NULL,
            uid text NOT NULL,
            change text NOT NULL CHECK (change IN ('added', 'changed', 'removed'))
        )""",
    "twin_relation_sets": """
        CREATE TABLE twin_relation_sets (
            set_id bigserial PRIMARY KEY,
            relation text NOT NULL,
            from_layer text NOT NULL,
            to_layer text NOT NULL,
            network text,
            inputs text NOT NULL,
            build_id bigint NOT NULL,
            n_rows bigint NOT NULL,
            n_unrelated bigint NOT NULL,
            UNIQUE (relation, from_layer, to_layer)
        )""",
    "twin_relations": """
        CREATE TABLE twin_relations (
            fid bigint PRIMARY KEY,
            set_id bigint NOT NULL,
            from_uid text NOT NULL,
            to_uid text,
            share double precision,
            distance_m double precision,
            n_candidates bigint
        )""",
    "twin_builds": """
        CREATE TABLE twin_builds (
            build_id bigserial PRIMARY KEY,
            time text NOT NULL,
            inputs text NOT NULL,
            report text NOT NULL
        )""",
    VERSION_TABLE: f"CREATE TABLE {VERSION_TABLE} (n bigint NOT NULL)",
}

#: The rows a re-import changed, as every reader would read them, written once by the
#: importer in its transaction (PostGIS only: a cache, not copied by ``twin copy``).
#: ``columns``: the table's ``[name, type]`` pairs then (JSON); ``rows``: the COPY CSV
#: stream of the added and changed features (what ``PostgisStore.read_features``
#: reads); ``positions``: little-endian int64, for each
#: row of the layer now, its row in the layer at ``base_import`` followed by ``rows``.
#: Only a layer's last import is kept. Stored uncompressed: every worker reads it at once.
DELTA_ROWS = (
    """CREATE TABLE IF NOT EXISTS twin_delta_rows (
    layer text PRIMARY KEY,
    import_id bigint NOT NULL,
    base_import bigint NOT NULL,
    columns text NOT NULL,
    rows bytea NOT NULL,
    positions bytea NOT NULL
)""",
    "ALTER TABLE twin_delta_rows ALTER COLUMN rows SET STORAGE EXTERNAL",
    "ALTER TABLE twin_delta_rows ALTER COLUMN positions SET STORAGE EXTERNAL",
)

#: The view of relation rows with their names (rebuilt when a build swaps the rows' table).
RELATION_VIEW = """CREATE VIEW twin_relation_rows AS
    SELECT r.fid AS fid, s.relation AS relation, s.from_layer AS from_layer,
           r.from_uid AS from_uid, s.to_layer AS to_layer, r.to_uid AS to_uid,
           r.share AS share, r.distance_m AS distance_m, r.n_candidates AS n_candidates
    FROM twin_relations r JOIN twin_relation_sets s ON s.set_id = r.set_id"""

INDEXES = (
    "CREATE INDEX twin_changes_import ON twin_changes (import_id)",
    "CREATE INDEX twin_changes_uid ON twin_changes (layer, uid)",
    "CREATE INDEX twin_relations_from ON twin_relations (from_uid)",
    "CREATE INDEX twin_relations_to ON twin_relations (to_uid)",
    RELATION_VIEW,
    f"INSERT INTO {VERSION_TABLE} (n) VALUES (0)",
)

#: Tables that are bookkeeping, not layers (never listed as layer tables).
BOOKKEEPING = frozenset(TABLES) | {"twin_relation_rows", "twin_delta_rows"}
