"""Passages of a run's artifacts, for the Q/A/V agents' offline templates and the validator.

Artifacts are JSON values; a place inside one is named by a path such as ``features[0].name``
(:func:`json_path` builds one, :func:`resolve_path` reads one). :func:`leaves` lists every text
and number with its path, :func:`gaps` finds what a reviewer would ask about a phase's draft,
and :func:`passages` picks the sentences that answer a question, so the offline model can quote
real text with citations that resolve. Everything is pure and deterministic: keys are visited
in sorted order and ties go to the first passage found.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from ideamine.agents.extraction import stem, terms

__all__ = [
    "GAP_KINDS",
    "NEAR_DUPLICATE",
    "gaps",
    "json_path",
    "key_terms",
    "leaves",
    "passages",
    "repeats",
    "resolve_path",
]


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_PART = re.compile(r'\.?([A-Za-z_][\w-]*|\d+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
PASSAGE_MAX_CHARS = 400  # longer leaves are code or documents, not statements to quote
NEAR_DUPLICATE = 0.8  # Jaccard similarity of two questions' terms at which one repeats the other


def json_path(path: str, key: object) -> str:
    """``path`` extended by a key (``a.b``, ``a["x.y"]``) or a list index (``a[0]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = str(key)
    if _IDENT.fullmatch(name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"


def resolve_path(value: object, path: str) -> object:
    """The part of ``value`` at ``path`` (``a.b[0].c``, ``a.0.c``, ``a["x.y"]``, ``$`` or ``""``
    for all of it).

    Raises:
        LookupError: the path is malformed or names a key or index that is not there.
    """
    rest = str(path).strip().removeprefix("$")
    while rest:
        found = _PATH_PART.match(rest)
        if not found or found.end() == 0:
            raise LookupError(f"malformed path {path!r}")
        name, index, quoted = found.groups()
        key: object = json.loads(quoted) if quoted else int(index) if index else name
        if isinstance(value, list) and str(key).isdigit() and int(str(key)) < len(value):
            value = value[int(str(key))]
        elif isinstance(value, Mapping) and str(key) in value:
            value = value[str(key)]
        else:
            raise LookupError(f"nothing at {path!r}")
        rest = rest[found.end() :]
    return value


def leaves(value: object, path: str = "") -> list[dict[str, str]]:
    """Every text or number in a JSON value as ``{"path", "text"}``, keys in sorted order."""
    if isinstance(value, Mapping):
        return [
            leaf
            for key in sorted(value, key=str)
            for leaf in leaves(value[key], json_path(path, key))
        ]
    if isinstance(value, list | tuple):
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, json_path(path, i))]
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        return []
    return [{"path": path, "text": str(value)}] if isinstance(value, str | int | float) else []


def _nodes(value: object, path: str = "") -> Iterable[tuple[str, Mapping[str, object]]]:
    """Every object inside a JSON value, with its path, outermost first."""
    if isinstance(value, Mapping):
        yield path, value
        for key in sorted(value, key=str):
            yield from _nodes(value[key], json_path(path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _nodes(item, json_path(path, i))


def _owner_ids(
    value: object, path: str = "", owner: tuple[str, str] = ("", "")
) -> dict[str, tuple[str, str]]:
    """Leaf path → the ``id`` of the nearest object around it and that id's path."""
    if isinstance(value, Mapping):
        if isinstance(value.get("id"), str):
            owner = (str(value["id"]), json_path(path, "id"))
        pairs = [(json_path(path, key), value[key]) for key in value]
    elif isinstance(value, list | tuple):
        pairs = [(json_path(path, i), item) for i, item in enumerate(value)]
    else:
        return {path: owner}
    return {
        leaf: found for at, item in pairs for leaf, found in _owner_ids(item, at, owner).items()
    }


_Candidate = tuple[dict[str, str], frozenset[str]]  # a passage and its terms (owner's too)
_CACHED_ARTIFACTS = 256  # artifacts whose candidates are kept (a run has about 50 types)
_cache: OrderedDict[tuple[str, bytes], tuple[_Candidate, ...]] = OrderedDict()
_cache_lock = threading.Lock()  # Python agents run on worker threads and may quote too


def _candidates(
    artifacts: Mapping[str, object], frames: Sequence[Mapping[str, object]]
) -> list[_Candidate]:
    """Quotable sentences of every artifact leaf (short enough to be a statement) and frame,
    each with its terms."""
    found: list[_Candidate] = []
    for name in sorted(artifacts):
        found.extend(_artifact_candidates(str(name), artifacts[name]))
    for frame in frames:
        passage = _passage(str(frame.get("id", "")), "", "", str(frame.get("text", "")))
        found.append((passage, _terms_of(passage)))
    return found


def _artifact_candidates(name: str, content: object) -> tuple[_Candidate, ...]:
    """One artifact's candidates, remembered by its content: the Q/A/V agents of a run ask
    many questions of the same upstream artifacts, and splitting every leaf into sentences and
    terms again for each question was most of a run's own CPU time. The key is a digest of
    the content's ``repr`` (which tells ``1`` from ``"1"``), so a changed draft is a new entry.
    """
    key = (name, hashlib.blake2b(repr(content).encode(), digest_size=16).digest())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    owners = _owner_ids(content)
    found: list[_Candidate] = []
    for leaf in leaves(content):
        if len(leaf["text"]) > PASSAGE_MAX_CHARS:
            continue
        owner, owner_path = owners.get(leaf["path"], ("", ""))
        for quote in _SENTENCE.split(leaf["text"].strip()):
            passage = _passage("", name, leaf["path"], quote, owner, owner_path)
            found.append((passage, _terms_of(passage)))
    made = tuple(found)
    with _cache_lock:
        _cache[key] = made
        if len(_cache) > _CACHED_ARTIFACTS:
            _cache.popitem(last=False)
    return made


def _terms_of(passage: Mapping[str, str]) -> frozenset[str]:
    return frozenset(terms(passage["quote"])) | {stem(passage["owner"])}


def _passage(
    frame: str, artifact: str, path: str, quote: str, owner: str = "", owner_path: str = ""
) -> dict[str, str]:
    keys = ("frame", "artifact", "path", "quote", "owner", "owner_path")
    return dict(zip(keys, (frame, artifact, path, quote, owner, owner_path), strict=True))


def repeats(text: str, earlier: Iterable[str]) -> bool:
    """Whether question ``text`` nearly repeats one of ``earlier``: the Jaccard similarity of
    their stemmed content terms is at least :data:`NEAR_DUPLICATE` (equal texts, case and
    spacing aside, when either has no content terms)."""
    mine = set(terms(text))
    flat = " ".join(str(text).lower().split()).rstrip("?")
    for old in earlier:
        theirs = set(terms(old))
        if not mine or not theirs:
            if flat == " ".join(str(old).lower().split()).rstrip("?"):
                return True
        elif len(mine & theirs) / len(mine | theirs) >= NEAR_DUPLICATE:
            return True
    return False


def key_terms(question: Mapping[str, object], artifacts: Iterable[str] = ()) -> list[str]:
    """The terms an answer to ``question`` must address: its topic's, then its text's, less
    words that name one of ``artifacts`` (a type such as ``DesignSystem`` says where, not what).
    """
    meta = {stem(str(name).lower()) for name in artifacts}
    found = [*terms(str(question.get("topic", ""))), *terms(str(question.get("text", "")))]
    return [term for term in dict.fromkeys(found) if term not in meta]


def passages(
    question: Mapping[str, object],
    artifacts: Mapping[str, object],
    frames: Sequence[Mapping[str, object]] = (),
    most: int = 2,
) -> list[dict[str, object]]:
    """Up to ``most`` quotable passages that together cover the most of the question's terms.

    A passage is a sentence of an artifact leaf (``artifact``, ``path``, ``quote``) or a
    knowledge frame (``frame``, ``quote``); ``owner`` is the id of the object around it (and
    ``owner_path`` that id's path), which covers an id term such as ``F-01``. A passage counts
    only if it is about the question by itself (two of its terms, or its only term). Greedy
    and deterministic: the passage adding the most uncovered terms wins (topic terms count
    double; then a definition by ``owner``, then a descriptive key such as ``summary``; then
    the first found). Questions, fragments under four words and echoes of the question are
    skipped. ``covers`` lists the question terms each passage covers.
    """
    text = str(question.get("text", ""))
    topic = set(key_terms({"topic": question.get("topic", "")}, artifacts))
    wanted = set(key_terms(question, artifacts))
    echo = " ".join(text.lower().split())
    pool = []
    for cand, found in _candidates(artifacts, frames):
        have = found & wanted
        if len(have) >= min(2, len(wanted)) and _quotable(str(cand["quote"]), echo):
            pool.append((cand, have, _bonus(cand, wanted)))
    chosen: list[dict[str, object]] = []
    covered: set[str] = set()
    for _ in range(int(most)):
        best, gain, adds = None, 0, frozenset[str]()
        for cand, have, bonus in pool:
            new = sum(2 if term in topic else 1 for term in have - covered)
            if new and new * 10 + bonus > gain:
                best, gain, adds = cand, new * 10 + bonus, have
        if best is None:
            break
        chosen.append({**best, "covers": sorted(adds)})
        covered |= adds
    return chosen


_DESCRIPTIVE_KEYS = frozenset(
    ("summary", "description", "purpose", "overview", "problem_statement", "finding", "criterion")
)


def _bonus(cand: Mapping[str, object], wanted: set[str]) -> int:
    """Tie-breaks: the object's own id is a wanted term (a definition) 5, descriptive key 1."""
    key = re.findall(r"[A-Za-z_][\w-]*", str(cand["path"]))[-1:] or [""]
    defines = bool(cand["owner"]) and stem(str(cand["owner"])) in wanted
    return 5 * defines + (key[0] in _DESCRIPTIVE_KEYS)


def _quotable(quote: str, echo: str) -> bool:
    flat = " ".join(quote.lower().split()).rstrip(".!")
    return (
        len(flat.split()) >= 4
        and not flat.endswith("?")
        and flat not in echo
        and echo.rstrip("?") not in flat
    )


_EVIDENCE_FLAGS = ("measured", "executed", "scanned")
# Keys whose text states something a reviewer would want backed (the headline claims).
_CLAIM_TEXT = "summary problem_statement assessment overview vision description rationale reason"
_CLAIM_KEYS = frozenset([*_CLAIM_TEXT.split(), "note", "purpose"])
_REFERENCE = re.compile(r"\b[A-Z]{1,5}-\d{2,4}\b(?!-\d)")
GAP_KINDS = ("open", "evidence", "reference", "assumption", "label", "claim")


def _label(artifact: str, path: str, node: Mapping[str, object]) -> str:
    """What an object is called: its name or title, else its key, else its artifact type."""
    named = node.get("name") or node.get("title") or node.get("metric") or node.get("story_id")
    if isinstance(named, str) and named.strip():
        return named.strip()
    keys = re.findall(r"[A-Za-z_][\w-]*", path)
    return (
        keys[-1].replace("_", " ")
        if keys
        else re.sub(r"([a-z])([A-Z])", r"\1 \2", artifact).lower()
    )


def _gap(kind: str, artifact: str, path: str, text: str, topic: str = "") -> dict[str, str]:
    topic = topic or " ".join(terms(text)[:3]) or text
    return {"kind": kind, "artifact": artifact, "path": path, "text": text.strip(), "topic": topic}


def _open_and_claim_gaps(name: str, content: object) -> Iterable[dict[str, str]]:
    for leaf in leaves(content):
        key = re.findall(r"[A-Za-z_][\w-]*", leaf["path"])[-1:] or [""]
        text = leaf["text"].strip()
        if "question" in leaf["path"] and text.endswith("?"):
            yield _gap("open", name, leaf["path"], text)
        elif key[0] in _CLAIM_KEYS and len(text) <= PASSAGE_MAX_CHARS:
            for claim in _SENTENCE.split(text)[:2]:  # the headline, and what it rests on
                if len(claim.split()) >= 8:
                    yield _gap("claim", name, leaf["path"], claim.rstrip(".!"))


def _flag_gaps(name: str, content: object) -> Iterable[dict[str, str]]:
    for path, node in _nodes(content):
        if any(node.get(flag) is False for flag in _EVIDENCE_FLAGS):
            yield _gap("evidence", name, path, _label(name, path, node), _label(name, path, node))
        if node.get("assumed") is True:
            yield _gap("assumption", name, path, _label(name, path, node), _label(name, path, node))
        statement = node.get("statement")
        if "assumptions[" in path and isinstance(statement, str) and statement.strip():
            yield _gap("assumption", name, json_path(path, "statement"), statement.rstrip(".!"))


def _reference_gaps(
    draft: Mapping[str, object], artifacts: Mapping[str, object]
) -> list[dict[str, str]]:
    """Ids the draft cites but never defines: those defined upstream first, then dangling ones."""
    defined = {
        str(n["id"]) for c in draft.values() for _, n in _nodes(c) if isinstance(n.get("id"), str)
    }
    known = {
        str(n["id"])
        for c in artifacts.values()
        for _, n in _nodes(c)
        if isinstance(n.get("id"), str)
    }
    cited: dict[str, dict[str, str]] = {}
    for name in sorted(draft):
        for leaf in leaves(draft[name]):
            for ref in _REFERENCE.findall(leaf["text"]):
                if ref not in defined and ref not in cited:
                    cited[ref] = _gap("reference", name, leaf["path"], ref, ref)
    return sorted(cited.values(), key=lambda gap: gap["text"] not in known)


def _label_gaps(draft: Mapping[str, object], people: Sequence[str]) -> Iterable[dict[str, str]]:
    """List items that are nothing but the name of one of the idea's groups of people."""
    wanted = {" ".join(str(person).lower().split()) for person in people}
    for name in sorted(draft):
        for leaf in leaves(draft[name]):
            label = " ".join(leaf["text"].lower().split())
            if leaf["path"].endswith("]") and label in wanted:
                wanted.discard(label)
                yield _gap("label", name, leaf["path"], leaf["text"], leaf["text"])


def gaps(draft: Mapping[str, object], artifacts: Mapping[str, object]) -> list[dict[str, str]]:
    """What a reviewer would ask about a phase's draft, ranked: one gap of each kind in turn.

    Kinds, in order: ``open`` (questions the draft itself leaves open), ``evidence`` (results it
    marks as not measured, executed or scanned), ``reference`` (ids it cites but does not
    define), ``assumption`` (what it assumes), ``label`` (the idea's groups of people named
    but not described) and ``claim`` (its headline statements, to be backed elsewhere). Each
    gap is ``{"kind", "artifact", "path", "text", "topic"}``; texts are unique.
    """
    spec = artifacts.get("IdeaSpec") or draft.get("IdeaSpec")
    people = spec.get("target_users", []) if isinstance(spec, Mapping) else []
    found: list[dict[str, str]] = _reference_gaps(draft, artifacts)
    found += list(_label_gaps(draft, people if isinstance(people, list) else []))
    for name in sorted(draft):
        found += [*_open_and_claim_gaps(name, draft[name]), *_flag_gaps(name, draft[name])]
    by_kind = [[gap for gap in found if gap["kind"] == kind] for kind in GAP_KINDS]
    unique_gaps: dict[str, dict[str, str]] = {}
    for row in itertools.zip_longest(*by_kind):
        for gap in row:
            if gap is not None:
                unique_gaps.setdefault(gap["text"].lower(), gap)
    return list(unique_gaps.values())
