"""Metadata tables of the twin file (documented in the README)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

SCHEMA_VERSION = "1"

_DDL = {
    "twin_layers": """
        CREATE TABLE twin_layers (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            category TEXT NOT NULL,
            classification TEXT NOT NULL,
            id_field TEXT,
            geometry_type TEXT,
            feature_count INTEGER NOT NULL,
            min_x REAL, min_y REAL, max_x REAL, max_y REAL,
            source TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            last_import INTEGER
        )""",
    "twin_imports": """
        CREATE TABLE twin_imports (
            import_id INTEGER PRIMARY KEY AUTOINCREMENT,
            layer TEXT NOT NULL,
            time TEXT NOT NULL,
            source TEXT NOT NULL,
            source_format TEXT,
            checksum TEXT,
            src_crs TEXT,
            options TEXT,
            field_mapping TEXT,
            n_read INTEGER, n_imported INTEGER, n_repaired INTEGER, n_rejected INTEGER,
            n_added INTEGER, n_changed INTEGER, n_removed INTEGER, n_unchanged INTEGER,
            initial INTEGER NOT NULL,
            report TEXT
        )""",
    "twin_changes": """
        CREATE TABLE twin_changes (
            import_id INTEGER NOT NULL,
            layer TEXT NOT NULL,
            uid TEXT NOT NULL,
            change TEXT NOT NULL CHECK (change IN ('added', 'changed', 'removed'))
        )""",
}

# Relations (twin build): created on first use, so older twin files upgrade in place.
# One row per stored relation in twin_relation_sets; its rows in twin_relations
# have fids set_id << 32 | row, so a set is one rowid range (read, replaced or
# dropped without scanning the table or touching the uid indexes' other sets).
SET_SHIFT = 32
_RELATION_DDL = {
    "twin_relation_sets": """
        CREATE TABLE twin_relation_sets (
            set_id INTEGER PRIMARY KEY AUTOINCREMENT,
            relation TEXT NOT NULL,
            from_layer TEXT NOT NULL,
            to_layer TEXT NOT NULL,
            network TEXT,
            inputs TEXT NOT NULL,
            build_id INTEGER NOT NULL,
            n_rows INTEGER NOT NULL,
            n_unrelated INTEGER NOT NULL,
            UNIQUE (relation, from_layer, to_layer)
        )""",
    "twin_relations": """
        CREATE TABLE twin_relations (
            fid INTEGER PRIMARY KEY,
            set_id INTEGER NOT NULL,
            from_uid TEXT NOT NULL,
            to_uid TEXT,
            share REAL,
            distance_m REAL,
            n_candidates INTEGER
        )""",
    "twin_builds": """
        CREATE TABLE twin_builds (
            build_id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            inputs TEXT NOT NULL,
            report TEXT NOT NULL
        )""",
}
RELATION_INDEXES = {
    "twin_relations_from": "CREATE INDEX twin_relations_from ON twin_relations (from_uid)",
    "twin_relations_to": "CREATE INDEX twin_relations_to ON twin_relations (to_uid)",
}
# The view QGIS and SQL users read: every stored row with its relation and layers.
_RELATION_VIEW = """
    CREATE VIEW twin_relation_rows AS
    SELECT r.fid AS fid, s.relation AS relation, s.from_layer AS from_layer,
           r.from_uid AS from_uid, s.to_layer AS to_layer, r.to_uid AS to_uid,
           r.share AS share, r.distance_m AS distance_m, r.n_candidates AS n_candidates
    FROM twin_relations r JOIN twin_relation_sets s ON s.set_id = r.set_id"""

_INDEXES = (
    "CREATE INDEX twin_changes_import ON twin_changes (import_id)",
    "CREATE INDEX twin_changes_uid ON twin_changes (layer, uid)",
)

_DESCRIPTIONS = {
    "twin_meta": "citytwin: twin settings (CRS, name, schema version)",
    "twin_layers": "citytwin: layers with kind, CIM category, classification, extent",
    "twin_imports": "citytwin: provenance of every import with its report",
    "twin_changes": "citytwin: change sets (added / changed / removed uids) per import",
    "twin_relation_sets": "citytwin: one row per stored relation (twin build) and its inputs",
    "twin_relations": "citytwin: relation rows (from_uid -> to_uid) of twin_relation_sets",
    "twin_relation_rows": "citytwin: every relation row with its relation and layers (view)",
    "twin_builds": "citytwin: provenance of every `twin build`",
}


def now_utc() -> str:
    """The current time as an ISO 8601 string in UTC, microseconds included."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def create_tables(con: sqlite3.Connection) -> None:
    """Create the metadata tables and register them as GeoPackage attribute tables."""
    for table, ddl in _DDL.items():
        con.execute(ddl)
        _register(con, table)
    for ddl in _INDEXES:
        con.execute(ddl)
    con.execute(
        "UPDATE gpkg_contents SET description=? WHERE table_name='twin_meta'",
        (_DESCRIPTIONS["twin_meta"],),
    )


def ensure_relation_tables(con: sqlite3.Connection) -> bool:
    """Create the relation tables unless the twin has them; upgrade the old layout.

    Returns
    -------
    bool
        True when relations stored by an older citytwin (one wide table without
        sets) were dropped: every relation must then be recomputed.
    """
    columns = {row[1] for row in con.execute("PRAGMA table_info(twin_relations)")}
    upgraded = "relation" in columns  # the single-table layout of schema 1
    if upgraded:
        con.execute("DROP TABLE twin_relations")
        con.execute("DELETE FROM gpkg_contents WHERE table_name='twin_relations'")
    have = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    for table, ddl in _RELATION_DDL.items():
        if table not in have:
            con.execute(ddl)
            _register(con, table)
    for name, ddl in RELATION_INDEXES.items():
        if name not in have:
            con.execute(ddl)
    if "twin_relation_rows" not in have:
        con.execute(_RELATION_VIEW)
        _register(con, "twin_relation_rows")
    return upgraded


def _register(con: sqlite3.Connection, table: str) -> None:
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description,"
        " last_change) VALUES (?, 'attributes', ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
        (table, table, _DESCRIPTIONS[table]),
    )


def set_meta(con: sqlite3.Connection, key: str, value: str) -> None:
    """Set one key of ``twin_meta``."""
    updated = con.execute("UPDATE twin_meta SET value=? WHERE key=?", (value, key)).rowcount
    if not updated:
        con.execute("INSERT INTO twin_meta (key, value) VALUES (?, ?)", (key, value))
