"""CSV / TSV point tables written as real files the way deliveries arrive."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import shapely
from shapely import Point

from twin.errors import SourceError, UsageError
from twin.io.table import read_table


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_utf8_with_bom_keeps_codes_as_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sensors.csv",
        "id,lon,lat,type,note\r\n0012,104.0657,30.6595,pressure,\r\n0013,104.07,30.66,flow,NA\r\n",
        "utf-8-sig",
    )
    frame = read_table(path)
    assert frame.crs is None
    assert list(frame.columns) == ["id", "type", "note", "geometry"]
    assert frame["id"].tolist() == ["0012", "0013"]
    assert pd.api.types.is_string_dtype(frame["id"])
    assert pd.isna(frame.loc[0, "note"]) and frame.loc[1, "note"] == "NA"
    assert frame.geometry.iloc[0].equals(Point(104.0657, 30.6595))
    assert frame.attrs["table"] == {
        "encoding": "utf-8-sig",
        "delimiter": ",",
        "columns": {"x": "lon", "y": "lat"},
    }


def test_gbk_with_chinese_headers_and_values(tmp_path: Path, caplog) -> None:
    path = write(
        tmp_path / "监测点.csv",
        "编号,名称,经度,纬度,所属街道\n"
        "A001,春熙路压力监测点,104.0812,30.6571,春熙路街道\n"
        "A002,天府广场流量计,104.0657,30.6595,督院街街道\n",
        "gbk",
    )
    with caplog.at_level(logging.INFO, logger="twin.io.table"):
        frame = read_table(path)
    assert "gb18030" in caplog.text
    assert frame["名称"].tolist() == ["春熙路压力监测点", "天府广场流量计"]
    assert frame["所属街道"].iloc[1] == "督院街街道"
    assert frame.geometry.iloc[0].equals(Point(104.0812, 30.6571))
    assert "经度" not in frame.columns and "纬度" not in frame.columns
    assert frame.attrs["table"]["encoding"] == "gb18030"


def test_plain_utf8_is_logged_as_such(tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "p.csv", "名称,经度,纬度\n测试,104.1,30.6\n")
    with caplog.at_level(logging.INFO, logger="twin.io.table"):
        frame = read_table(path)
    assert "utf-8" in caplog.text and "gb18030" not in caplog.text
    assert frame["名称"].iloc[0] == "测试"


def test_bad_coordinates_become_none_and_rows_stay(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.csv",
        "id,lng,lat\n"
        "1,104.1,30.6\n"
        "2,,30.6\n"
        "3,abc,30.6\n"
        "4,104.1,\n"
        "5, 104.2 , 30.7 \n"
        "6,1e400,30.6\n"
        "7,104°05',30.6\n",
    )
    frame = read_table(path)
    assert len(frame) == 7
    assert frame["id"].tolist() == ["1", "2", "3", "4", "5", "6", "7"]
    missing = frame.geometry.isna().tolist()
    assert missing == [False, True, True, True, False, True, True]
    assert frame.geometry.iloc[4].equals(Point(104.2, 30.7))


def test_wkt_column_with_bad_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "roads.csv",
        "name,WKT\n"
        'a,"LINESTRING (104.06 30.65, 104.07 30.66)"\n'
        "b,POINT (104.1 30.6)\n"
        "c,not a geometry\n"
        "d,\n"
        "e,POINT EMPTY\n"
        'f,"SRID=4490;POLYGON ((0 0, 1 0, 1 1, 0 0))"\n'
        f"g,{shapely.to_wkb(Point(104.2, 30.7), hex=True)}\n"
        'h,"POLYGON ((0 0, 1 0"\n',
    )
    frame = read_table(path)
    assert len(frame) == 8 and "WKT" not in frame.columns
    geoms = frame.geometry
    assert geoms.iloc[0].equals(shapely.from_wkt("LINESTRING (104.06 30.65, 104.07 30.66)"))
    assert geoms.iloc[1].equals(Point(104.1, 30.6))
    assert geoms.iloc[2] is None and geoms.iloc[3] is None and geoms.iloc[4] is None
    assert geoms.iloc[5].geom_type == "Polygon"
    assert geoms.iloc[6].equals(Point(104.2, 30.7))
    assert geoms.iloc[7] is None
    assert frame.attrs["table"]["columns"] == {"wkt": "WKT"}


def test_explicit_columns_win_and_are_matched_loosely(tmp_path: Path) -> None:
    path = write(tmp_path / "survey.csv", "点号,X,Y,lon,lat\nP1,3392300.5,505700.25,1,2\n")
    frame = read_table(path, x="y", y="x")  # Chinese survey: X is the northing
    assert frame.geometry.iloc[0].equals(Point(505700.25, 3392300.5))
    assert list(frame.columns) == ["点号", "lon", "lat", "geometry"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("FID,POINT_X,POINT_Y", {"x": "POINT_X", "y": "POINT_Y"}),
        ("FID,X,Y", {"x": "X", "y": "Y"}),
        ("FID,Longitude,Latitude", {"x": "Longitude", "y": "Latitude"}),
        ("FID,经度（WGS84）,纬度（WGS84）", {"x": "经度（WGS84）", "y": "纬度（WGS84）"}),
        ("FID,x_coord,y_coord", {"x": "x_coord", "y": "y_coord"}),
        ("FID,x,y,lng,lat", {"x": "lng", "y": "lat"}),
    ],
)
def test_coordinate_columns_are_detected(tmp_path: Path, header, expected) -> None:
    row = ",".join(["7", "104.5", "30.5", "104.5", "30.5"][: header.count(",") + 1])
    frame = read_table(write(tmp_path / "t.csv", f"{header}\n{row}\n"))
    assert frame.attrs["table"]["columns"] == expected
    assert frame.geometry.iloc[0].equals(Point(104.5, 30.5))


def test_a_geometry_column_that_is_not_wkt_gives_way_to_lon_lat(tmp_path: Path) -> None:
    path = write(tmp_path / "poi.csv", "name,geometry,lon,lat\nA,point,104.1,30.6\n")
    frame = read_table(path)
    assert frame.attrs["table"]["columns"] == {"x": "lon", "y": "lat"}
    assert frame["geometry_text"].iloc[0] == "point"
    assert frame.geometry.iloc[0].equals(Point(104.1, 30.6))


@pytest.mark.parametrize(
    ("name", "text", "delimiter", "expected"),
    [
        ("t.tsv", "id\tlon\tlat\n1\t104.1\t30.6\n", None, "\t"),
        ("t.txt", "id;lon;lat\n1;104.1;30.6\n", None, ";"),
        ("t.txt", "id|lon|lat\n1|104.1|30.6\n", None, "|"),
        ("t.txt", "id\tlon\tlat\n1\t104.1\t30.6\n", "tab", "\t"),
        ("t.csv", "id\tlon\tlat\n1\t104.1\t30.6\n", "\\t", "\t"),
    ],
)
def test_delimiters(tmp_path: Path, name, text, delimiter, expected) -> None:
    frame = read_table(write(tmp_path / name, text), delimiter=delimiter)
    assert frame.attrs["table"]["delimiter"] == expected
    assert frame.geometry.iloc[0].equals(Point(104.1, 30.6))


def test_quoted_fields_keep_their_commas(tmp_path: Path) -> None:
    path = write(tmp_path / "addr.csv", 'addr,lon,lat\n"成都市锦江区, 红星路",104.08,30.66\n')
    assert read_table(path)["addr"].iloc[0] == "成都市锦江区, 红星路"


def test_utf16_excel_unicode_text(tmp_path: Path) -> None:
    path = write(tmp_path / "excel.txt", "名称\t经度\t纬度\r\n泵站\t104.1\t30.6\r\n", "utf-16")
    frame = read_table(path)
    assert frame.attrs["table"]["encoding"] == "utf-16"
    assert frame["名称"].iloc[0] == "泵站"


def test_given_encoding_is_used_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "g.csv", "名称,经度,纬度\n泵站,104.1,30.6\n", "gbk")
    assert read_table(path, encoding="GBK")["名称"].iloc[0] == "泵站"
    with pytest.raises(SourceError, match="encoding='gb18030'"):
        read_table(path, encoding="utf-8")
    with pytest.raises(SourceError, match="unknown encoding"):
        read_table(path, encoding="klingon")


def test_no_coordinate_columns_lists_columns_and_options(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "id,east,north\n1,2,3\n")
    with pytest.raises(SourceError) as info:
        read_table(path)
    message = str(info.value)
    assert "['id', 'east', 'north']" in message
    assert "x=" in message and "y=" in message and "wkt=" in message


def test_named_column_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "id,east,north\n1,2,3\n")
    with pytest.raises(SourceError, match=r"no column 'e'.*x="):
        read_table(path, x="e", y="north")
    frame = read_table(path, x="EAST", y="north")
    assert frame.geometry.iloc[0].equals(Point(2, 3))


def test_option_misuse(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "id,lon,lat\n1,2,3\n")
    with pytest.raises(UsageError, match="x= and y="):
        read_table(path, x="lon")
    with pytest.raises(UsageError, match="wkt="):
        read_table(path, x="lon", y="lat", wkt="id")


def test_missing_empty_and_ragged_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="empty"):
        read_table(write(tmp_path / "e.csv", ""))
    with pytest.raises(SourceError, match="cannot parse"):
        read_table(write(tmp_path / "r.csv", "id,lon,lat\n1,2,3\n4,5,6,7,8\n"))


def test_header_only_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = read_table(write(tmp_path / "h.csv", "id,lon,lat\n"))
    assert len(frame) == 0 and list(frame.columns) == ["id", "geometry"]
