"""Standard addresses (标准地址): parse, match and geocode Chinese addresses.

- :mod:`~twin.address.normalise`: full-width, traditional characters and
  Chinese numerals to one spelling;
- :mod:`~twin.address.divisions`: the administrative division table (aliases,
  short forms, renamed divisions);
- :mod:`~twin.address.parse`: an address split into levels;
- :mod:`~twin.address.match`: exact then fuzzy matching against a standard
  address layer;
- :mod:`~twin.address.geocode`: a twin's geocoder (building, grid cell and
  district of each answer), geocoding of Series, and reverse geocoding.

Examples
--------
>>> from twin.address import parse_address
>>> parse_address("上海市閘北區共和新路１２０號").district
'静安区'
"""

from twin.address.divisions import Division, DivisionTable, division_table
from twin.address.geocode import (
    Geocoder,
    geocode,
    geocoder_for,
    geocoder_from_frame,
    level_report,
    reverse,
)
from twin.address.match import LEVELS, AddressIndex, AddressMatch
from twin.address.normalise import normalise
from twin.address.parse import ParsedAddress, parse_address, parse_addresses

__all__ = [
    "LEVELS",
    "AddressIndex",
    "AddressMatch",
    "Division",
    "DivisionTable",
    "Geocoder",
    "ParsedAddress",
    "division_table",
    "geocode",
    "geocoder_for",
    "geocoder_from_frame",
    "level_report",
    "normalise",
    "parse_address",
    "parse_addresses",
    "reverse",
]
