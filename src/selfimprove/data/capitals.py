"""Country capitals that ship offline: the per-country JSON files of `countryinfo` (MIT), read
directly (the package is not imported).

Each file `countryinfo/data/<country>.json` holds a country's `name`, `capital` and `ISO`
codes; the package's `data_no_iso/` folder (historical and partial entries) is not read.
Names are normalised to plain ASCII lowercase words joined by `_` (`south_africa`,
`port_of_spain`; accents dropped: `bogota`, `yaounde`). An entry is left out when its name
or capital is anything else after that (`cocos (keeling) islands`, `n'djamena`), when it has
no capital, or when its capital is another entry's too (`burma` and `myanmar`, `serbia` and
`serbia and montenegro`), so the map is one-to-one: a capital names exactly one entity. The
data's own vintage stands (`kazakhstan -> nur_sultan`): it is the knowledge base that the
facts loop (`failures/facts.py`) checks statements against, not a claim about today's map.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from selfimprove.data.shakespeare import DataMissingError

_WORDS = re.compile(r"[a-z]+(_[a-z]+)*")


def countries_dir() -> Path:
    spec = importlib.util.find_spec("countryinfo")  # finds the files without running the package
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError(
            "country capitals need the package countryinfo (pip install countryinfo)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def normalise(text: str) -> str:
    """`Port-au-Prince` -> `port_au_prince`, `Bogotá` -> `bogota`, `Washington D.C.` ->
    `washington_dc`: ASCII letters, lowercase, words joined by `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    spaced = ascii_text.lower().replace("-", " ").replace(".", "")
    return "_".join(spaced.split())


@functools.cache
def capitals() -> Mapping[str, str]:
    """Entity -> capital, both normalised, sorted by entity (about 225 entries); read-only,
    as every caller shares this one cached map."""
    found: dict[str, str] = {}
    for path in sorted(countries_dir().glob("*.json")):
        info = json.loads(path.read_text(encoding="utf-8"))
        capital = info.get("capital")
        if not isinstance(capital, str) or not info.get("name"):
            continue
        name, city = normalise(info["name"]), normalise(capital)
        if _WORDS.fullmatch(name) and _WORDS.fullmatch(city):
            found[name] = city
    if not found:
        raise DataMissingError(f"no country with a capital in {countries_dir()}")
    shared = Counter(found.values())
    return MappingProxyType(
        {name: city for name, city in sorted(found.items()) if shared[city] == 1}
    )
