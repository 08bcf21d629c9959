"""Deterministic text helpers for agent templates.

:data:`FILTERS` and :data:`GLOBALS` are installed into the Jinja environment by
:mod:`ideamine.agents.render`, so every prompt and every ``offline`` template can use them
(``{{ idea.text | title_from }}``, ``{% for e in entities(artifacts) %}``). All helpers are pure:
no I/O, no randomness, no clock, and their output order never depends on hashing of sets, so the
offline model renders byte-identical output for the same run context.

The idea-reading heuristics (roles, nouns, features, titles) live in
:mod:`ideamine.agents.extraction`; the word lists in :mod:`ideamine.agents.lexicon`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence

from jinja2 import Undefined

from ideamine.agents import lexicon as lx
from ideamine.agents.extraction import (
    domain_nouns,
    features,
    keywords,
    plural,
    singular,
    stem,
    strip_name,
    terms,
    title_from,
    user_roles,
    verb_base,
    words,
)
from ideamine.agents.passages import gaps, json_path, key_terms, leaves, passages, repeats

__all__ = [
    "FILTERS",
    "GLOBALS",
    "camel",
    "category_of",
    "complexity_of",
    "compliance_hints",
    "entities",
    "gaps",
    "hash_int",
    "hash_pick",
    "json_path",
    "kebab",
    "leaves",
    "money",
    "numbered",
    "oxford_join",
    "palette",
    "pascal",
    "passages",
    "persona_name",
    "sentence",
    "slug",
    "snake",
    "terms",
    "tojson",
    "unique",
    "with_article",
]

COMPLIANCE_REGIMES = ("GDPR", "SOC2", "HIPAA", "PCI-DSS", "ISO27001")
_SEMVER = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
# Characters PyYAML refuses in a stream (or treats specially, like the BOM); JSON leaves them raw.
_YAML_UNSAFE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _undefined_to_error(value: object) -> object:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError, a TemplateError
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def tojson(value: object, indent: int | None = None) -> str:
    """JSON text of ``value`` that is also always valid YAML, keys sorted.

    Replaces Jinja's built-in filter: non-ASCII text stays readable (emoji are not split into
    surrogate pairs), and characters a YAML stream may not contain are ``\\u`` escaped.
    """
    text = json.dumps(
        value, sort_keys=True, ensure_ascii=False, indent=indent, default=_undefined_to_error
    )
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _ascii_words(text: object) -> list[str]:
    """ASCII word parts of ``text``, splitting camelCase ("café finder" → ["cafe", "finder"])."""
    flat = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    flat = re.sub(r"([a-z])([A-Z])", r"\1 \2", flat)
    return [w.lower() for w in re.findall(r"[A-Za-z0-9]+", flat)]


def snake(text: object) -> str:
    """``snake_case`` ASCII identifier of ``text``; ``"item"`` when nothing is left."""
    name = "_".join(_ascii_words(text)) or "item"
    return f"n_{name}" if name[0].isdigit() else name


def kebab(text: object) -> str:
    """``kebab-case`` ASCII form of ``text`` (for URL paths and file names)."""
    return "-".join(_ascii_words(text)) or "item"


def slug(text: object, max_len: int = 48) -> str:
    """A URL slug: kebab case, at most ``max_len`` characters, never ending in ``-``."""
    return kebab(text)[: int(max_len)].rstrip("-") or "item"


def pascal(text: object) -> str:
    """``PascalCase`` ASCII identifier of ``text``."""
    name = "".join(w.capitalize() for w in _ascii_words(text)) or "Item"
    return f"N{name}" if name[0].isdigit() else name


def camel(text: object) -> str:
    """``camelCase`` ASCII identifier of ``text``."""
    name = pascal(text)
    return name[:1].lower() + name[1:]


def title_case(text: object) -> str:
    """Capitalise each word's first letter, leaving the rest (``"3D maze"`` → ``"3D Maze"``)."""
    return " ".join(w[:1].upper() + w[1:] for w in str(text).split())


def sentence(text: object) -> str:
    """One tidy sentence: single spaces, a capital first letter and a final full stop."""
    flat = " ".join(str(text).split()).strip()
    if not flat:
        return ""
    flat = flat[:1].upper() + flat[1:]
    return flat if flat[-1] in ".!?" else f"{flat}."


def clip(text: object, n: int = 12) -> str:
    """The first ``n`` words of ``text``, with ``…`` when cut."""
    parts = str(text).split()
    return " ".join(parts[: int(n)]) + ("…" if len(parts) > int(n) else "")


def oxford_join(items: Iterable[object], conj: str = "and") -> str:
    """``"a"``, ``"a and b"``, ``"a, b, and c"``."""
    parts = [str(item) for item in items if str(item)]
    if len(parts) <= 2:
        return f" {conj} ".join(parts)
    return f"{', '.join(parts[:-1])}, {conj} {parts[-1]}"


def with_article(phrase: object) -> str:
    """``phrase`` with ``a`` or ``an`` in front (``"order"`` → ``"an order"``)."""
    text = str(phrase)
    low = text.lower()
    vowel = low[:1] in "aeiou" or low.startswith(("hour", "honest", "honor", "honour"))
    # "a user", "a unit", "a one-off", "a euro" but "an umbrella", "an upload"
    yoo = re.match(r"u[^aeiou][aeiou]", low) is not None or low.startswith(("one", "eu"))
    return f"{'an' if vowel and not yoo else 'a'} {text}"


def unique(items: Iterable[object]) -> list[object]:
    """``items`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(items))


def numbered(prefix: object, index: object, width: int = 3) -> str:
    """A stable id such as ``US-001`` from a prefix and a 1-based index."""
    return f"{prefix}-{int(str(index)):0{int(width)}d}"


def hash_int(seed: object, modulo: int) -> int:
    """A deterministic integer in ``[0, modulo)`` from the SHA-256 of ``seed``."""
    digest = hashlib.sha256(str(seed).encode("utf-8")).hexdigest()
    return int(digest, 16) % max(int(modulo), 1)


def hash_pick(items: Sequence[object], seed: object) -> object:
    """One element of ``items`` chosen by the SHA-256 of ``seed``; ``""`` when empty."""
    seq = list(items)
    return seq[hash_int(seed, len(seq))] if seq else ""


def nth(items: Sequence[object], index: object) -> object:
    """``items[index]`` wrapping around (so any iteration number finds an element)."""
    seq = list(items)
    return seq[int(str(index)) % len(seq)] if seq else ""


def semver(value: object = "0.1.0") -> str:
    """``value`` as ``MAJOR.MINOR.PATCH`` (``"v1.2"`` → ``"1.2.0"``); ``"0.1.0"`` if none."""
    found = _SEMVER.search(str(value))
    if not found:
        return "0.1.0"
    return ".".join(str(int(part or 0)) for part in found.groups())


def money(amount: object) -> str:
    """US dollars with thousands separators (``12000`` → ``"$12,000"``)."""
    return f"${float(str(amount)):,.0f}"


def _vocabulary(text: str) -> list[str]:
    tokens = words(text)
    return [*(singular(w) for w in tokens), *(verb_base(w) for w in tokens if verb_base(w))]


def category_of(text: object) -> str:
    """The product category the idea's words point to most, or ``"general"``."""
    vocab = _vocabulary(str(text))
    scores = {name: sum(vocab.count(w) for w in cues) for name, cues in lx.CATEGORIES.items()}
    best = max(scores, key=lambda name: scores[name])  # first category wins ties
    return best if scores[best] else "general"


def compliance_hints(text: object) -> list[str]:
    """Compliance regimes the idea's words imply (patients → HIPAA, payments → PCI-DSS)."""
    vocab = set(_vocabulary(str(text)))
    return [regime for cues, regime in lx.COMPLIANCE_HINTS if vocab.intersection(cues)]


def complexity_of(text: object, constraints: Mapping[str, object] | None = None) -> str:
    """``low``, ``medium`` or ``high`` from length, number of roles and compliance needs."""
    size = len(words(str(text)))
    given = (constraints or {}).get("compliance") or []
    regimes = bool(given) or bool(compliance_hints(text))
    score = (size >= 40) + (size >= 120) + (len(user_roles(str(text))) >= 3) + regimes
    return "low" if score == 0 else "medium" if score <= 2 else "high"


def persona_name(role: object) -> str:
    """An alliterative first name for a role (``"farmers"`` → ``"Fiona"``), stable per role."""
    head = _ascii_words(singular(str(role)))
    letter = head[-1][:1].upper() if head else ""
    matching = [name for name in lx.FIRST_NAMES if name.startswith(letter)] or list(lx.FIRST_NAMES)
    return str(hash_pick(matching, role))


def _field(name: str, kind: str, *, required: bool = True, ref: str = "") -> dict[str, object]:
    field: dict[str, object] = {"name": name, "type": kind, "required": required}
    if ref:
        field["references"] = ref
    return field


def _entity(
    name: str, kind: str, actors: Sequence[str], things: Sequence[str]
) -> dict[str, object]:
    many = plural(" ".join(_ascii_words(name)) or "item")
    fields = [_field("id", "integer")]
    if kind == "actor":
        fields += [_field("name", "string"), _field("email", "string")]
    elif kind == "thing":
        fields += [_field("title", "string"), _field("description", "text", required=False)]
        fields += [_field(f"{snake(a)}_id", "integer", ref=a) for a in actors[:1]]
    else:
        fields += [_field(f"{snake(a)}_id", "integer", ref=a) for a in actors[:2]]
        fields += [_field(f"{snake(t)}_id", "integer", ref=t) for t in things[:1]]
        fields.append(_field("status", "string"))
    fields.append(_field("created_at", "datetime", required=False))
    return {
        "name": name,
        "kind": kind,
        "snake": snake(name),
        "plural": snake(many),
        "table": snake(many),
        "path": "/" + kebab(many),
        "label": {"actor": "name", "thing": "title"}.get(kind, "status"),
        "fields": fields,
    }


_IMPLIED_NAMES = tuple(dict.fromkeys(e for names in lx.IMPLIED_ENTITIES.values() for e in names))


def _usable(name: str, taken: Iterable[str]) -> bool:
    ident = snake(name)
    squashed = {t.replace("_", "") for t in taken}
    fresh = ident.replace("_", "") not in squashed and ident.lower() not in lx.NON_ENTITY_WORDS
    return ident not in lx.PYTHON_RESERVED and fresh and name != "Item"


def _entity_names(text: str, roles: Sequence[str], n: int) -> list[tuple[str, str]]:
    actors = [pascal(singular(r)) for r in roles if singular(r) not in ("administrator", "admin")]
    nouns = [pascal(noun) for noun in domain_nouns(text, 6) if noun not in lx.ROLE_HEADS]
    vocab = _vocabulary(text)
    implied = [e for w in vocab if w in lx.IMPLIED_ENTITIES for e in lx.IMPLIED_ENTITIES[w]]
    events = {e for e in _IMPLIED_NAMES if e not in lx.THING_ENTITIES}
    plan = [(a, "actor") for a in actors[:2]]
    plan += [(t, "event" if t in events else "thing") for t in nouns[:2]]
    plan += [(e, "thing" if e in lx.THING_ENTITIES else "event") for e in implied[:2]]
    plan += [(a, "actor") for a in actors[2:]]
    plan += [(t, "event" if t in events else "thing") for t in nouns[2:]]
    chosen: list[tuple[str, str]] = []
    for name, kind in plan:
        if _usable(name, [snake(c) for c, _ in chosen]) and len(chosen) < n:
            chosen.append((name, kind))
    if not any(kind == "actor" for _, kind in chosen):
        chosen.insert(0, ("User", "actor"))
    if not any(kind == "thing" for _, kind in chosen):
        chosen.insert(1, ("Item", "thing"))
    rank = {"actor": 0, "thing": 1, "event": 2}
    # Actors, then things, then events: every reference points to an earlier entity, so tables
    # can be created and seeded in list order.
    return sorted(chosen[: max(n, 2)], key=lambda pair: rank[pair[1]])


def entities(artifacts: Mapping[str, object], n: int = 6) -> list[dict[str, object]]:
    """The data entities of the idea, shared by the data model, the API and the code.

    Derived from ``IdeaSpec`` (description and target users) and, when present, the
    ``UserStories`` wants: the roles become actor entities (Farmer), the main domain nouns thing
    entities (Produce), and verbs like "sell" or "book" imply event entities (Order, Booking).
    Each entity is a mapping with ``name`` (PascalCase), ``kind``, ``snake``, ``plural``,
    ``table``, ``path`` (``/farmers``), ``label`` and ``fields`` (``name``, ``type`` in integer |
    string | text | datetime, ``required``, optional ``references``). Every agent that calls it
    with the same artifacts gets the same list, so paths, tables and models agree.
    """
    spec = artifacts.get("IdeaSpec")
    spec = spec if isinstance(spec, Mapping) else {}
    stories = artifacts.get("UserStories")
    listed = stories.get("stories", []) if isinstance(stories, Mapping) else []
    wants = ". ".join(str(s.get("i_want", "")) for s in listed if isinstance(s, Mapping))
    text = f"{strip_name(str(spec.get('description', '')))}. {wants}"
    roles = [str(r) for r in spec.get("target_users", []) or []]
    chosen = _entity_names(text, roles, int(n))
    actors = [name for name, kind in chosen if kind == "actor"]
    things = [name for name, kind in chosen if kind == "thing"]
    return [_entity(name, kind, actors, things) for name, kind in chosen]


_PALETTES = (
    ("Forest", "#1b5e20", "#33691e", "#e65100"),
    ("Harbour", "#0d47a1", "#01579b", "#c2185b"),
    ("Plum", "#4a148c", "#6a1b9a", "#00796b"),
    ("Ember", "#b71c1c", "#bf360c", "#1565c0"),
    ("Slate", "#263238", "#37474f", "#d84315"),
    ("Teal", "#004d40", "#006064", "#ad1457"),
)


def palette(seed: object) -> dict[str, str]:
    """A colour palette picked by the SHA-256 of ``seed`` (e.g. the product title).

    Every palette keeps white text on ``primary``/``secondary``/``accent`` and ``text`` on
    ``background`` above the WCAG AA contrast ratio of 4.5:1.
    """
    name, primary, secondary, accent = _PALETTES[hash_int(seed, len(_PALETTES))]
    return {
        "name": name,
        "primary": primary,
        "secondary": secondary,
        "accent": accent,
        "text": "#1a1a1a",
        "background": "#ffffff",
        "surface": "#f5f5f5",
    }


def by_suffix(items: Iterable[object], *suffixes: str) -> list[str]:
    """The items (as sorted strings) ending with one of ``suffixes``, e.g. ``".py"``."""
    return sorted(str(item) for item in items if str(item).endswith(tuple(suffixes)))


def mapping(items: Iterable[Mapping[str, object]], key: str, value: str) -> dict[str, object]:
    """``{item[key]: item[value]}`` for a list of mappings, in list order."""
    return {str(item[key]): item[value] for item in items}


def field_type(kind: object, dialect: str) -> str:
    """A field type of :func:`entities` in ``python``, ``sql``, ``openapi`` or ``js`` terms."""
    table = {
        "python": {"integer": "int", "datetime": "str"},
        "sql": {"integer": "INTEGER", "datetime": "TEXT", "string": "TEXT", "text": "TEXT"},
        "openapi": {"integer": "integer", "datetime": "string"},
        "js": {"integer": "number"},
    }
    default = {"python": "str", "sql": "TEXT", "openapi": "string", "js": "string"}
    return table.get(dialect, {}).get(str(kind), default.get(dialect, "string"))


_HELPERS: tuple[Callable[..., object], ...] = (
    by_suffix,
    camel,
    category_of,
    clip,
    complexity_of,
    compliance_hints,
    domain_nouns,
    entities,
    features,
    field_type,
    gaps,
    hash_int,
    hash_pick,
    json_path,
    kebab,
    key_terms,
    keywords,
    leaves,
    mapping,
    money,
    nth,
    numbered,
    oxford_join,
    palette,
    pascal,
    passages,
    persona_name,
    plural,
    repeats,
    semver,
    sentence,
    singular,
    slug,
    snake,
    stem,
    strip_name,
    terms,
    title_case,
    title_from,
    tojson,
    unique,
    user_roles,
    verb_base,
    with_article,
    words,
)

FILTERS: dict[str, Callable[..., object]] = {helper.__name__: helper for helper in _HELPERS}
"""Every helper, by name, as a Jinja filter (``{{ idea.text | user_roles }}``)."""

GLOBALS: dict[str, object] = {
    **FILTERS,
    "COMPLIANCE_REGIMES": list(COMPLIANCE_REGIMES),
}
"""Every helper as a Jinja global (``entities(artifacts)``), plus ``COMPLIANCE_REGIMES``."""
