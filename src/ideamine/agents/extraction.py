"""Reading a software idea without a language model: roles, nouns, features and a title.

Heuristics over a small lexicon (:mod:`ideamine.agents.lexicon`), tuned on the SRDD idea set.
Every function is pure and deterministic: ordering comes from positions in the text and from
tuple-ordered word lists, never from hashing, sets or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from ideamine.agents import lexicon as lx

__all__ = [
    "domain_nouns",
    "features",
    "keywords",
    "plural",
    "sentences",
    "singular",
    "stem",
    "terms",
    "title_from",
    "user_roles",
    "verb_base",
    "words",
]

_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|[,;:()]")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
_NAME_IS = re.compile(
    r"^\s*((?:[A-Z0-9][\w'’&+!.\-]*)(?:\s+[A-Z0-9][\w'’&+!.\-]*){0,5})\s+(?:is|are)\s+(?:a|an|the)\b"
)
_PUNCT = frozenset(",;:()")
_ID = re.compile(r"^[a-z]{1,5}-\d{1,4}$")
_DIGIT_GROUP = re.compile(r"(?<=\d),(?=\d{3}\b)")
# Words that shape a question without naming what it is about ("what exactly does … say").
_FILLER_TEXT = """anyone anybody exactly really actually cite cites cited define defines defined
    defining describe describes described explain explains mention mentions mentioned mean means
    meant say says said show shows shown state states stated tell tells back backs backed claim
    claims today currently current"""
_QUESTION_FILLER = frozenset(_FILLER_TEXT.split())
_COORDINATORS = frozenset(("and", "or", "but", "then", "while", "so", "plus"))
_PHRASE_ENDERS = frozenset(("where", "which", "who", "whose", "when", "because", "until", "that"))
_MAX_PHRASE_WORDS = 9
_ALL_VERBS = lx.VERBS | lx.META_VERBS
_VERB_SUFFIXES = (
    ("ies", "y"),
    ("ied", "y"),
    ("es", ""),
    ("s", ""),
    ("ed", ""),
    ("ed", "e"),
    ("d", ""),
    ("ing", ""),
    ("ing", "e"),
)


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (letters and digits; inner ' and - kept)."""
    return [tok.lower() for tok in _TOKEN.findall(str(text)) if tok not in _PUNCT]


def sentences(text: str) -> list[list[str]]:
    """Tokens (words in original case plus , ; : ( )) of each sentence of ``text``."""
    parts = _SENTENCE_END.split(str(text))
    return [toks for part in parts if (toks := _TOKEN.findall(part))]


def _match_case(original: str, changed: str) -> str:
    if original[:1].isupper() and original[1:2].islower():
        return changed[:1].upper() + changed[1:]
    if original.isupper() and len(original) > 1:
        return changed.upper()
    return changed


def _singular_word(word: str) -> str:
    low = word.lower()
    if low in lx.SINGULARS:
        base = lx.SINGULARS[low]
    elif low in lx.UNCOUNTABLE or len(low) <= 3 or low.endswith(("ss", "us", "is")):
        base = low
    elif low.endswith("ies") and len(low) > 4:
        base = low[:-3] + "y"
    elif low.endswith(("sses", "xes", "zes", "ches", "shes", "oes")):
        base = low[:-2]
    elif low.endswith("s"):
        base = low[:-1]
    else:
        base = low
    return _match_case(word, base)


def _plural_word(word: str) -> str:
    low = word.lower()
    if low in lx.IRREGULAR_PLURALS:
        result = lx.IRREGULAR_PLURALS[low]
    elif low in lx.UNCOUNTABLE or low in lx.SINGULARS or _singular_word(low) != low:
        result = low
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        result = low + "es"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        result = low[:-1] + "ies"
    else:
        result = low + "s"
    return _match_case(word, result)


def _last_word(phrase: str, change: str) -> str:
    head, _, last = str(phrase).rpartition(" ")
    if not last:
        return head
    new = _singular_word(last) if change == "singular" else _plural_word(last)
    return f"{head} {new}" if head else new


def singular(phrase: str) -> str:
    """Singular form of a noun phrase's last word (``"pet owners"`` → ``"pet owner"``)."""
    return _last_word(phrase, "singular")


def plural(phrase: str) -> str:
    """Plural form of a noun phrase's last word; plurals and uncountables stay as they are."""
    return _last_word(phrase, "plural")


def verb_base(word: str) -> str:
    """Base form of ``word`` when it is a known verb (``"sells"`` → ``"sell"``), else ``""``."""
    low = word.lower()
    if low in _ALL_VERBS:
        return low
    for suffix, repl in _VERB_SUFFIXES:
        if low.endswith(suffix) and len(low) > len(suffix) + 2:
            stem = low[: -len(suffix)] + repl
            if stem in _ALL_VERBS:
                return stem
            doubled = suffix in ("ed", "ing") and stem[-1:] == stem[-2:-1]
            if doubled and stem[:-1] in _ALL_VERBS:
                return stem[:-1]
    return ""


def _is_adjective(low: str) -> bool:
    if low in lx.ADJECTIVES or (low.endswith("ly") and len(low) > 4):
        return True
    return low.endswith(lx.ADJECTIVE_SUFFIXES) and low not in lx.ADJECTIVE_SUFFIX_EXCEPTIONS


def _is_noun(tokens: Sequence[str], i: int) -> bool:
    """Whether ``tokens[i]`` reads as a content noun in its sentence."""
    tok = tokens[i]
    low = tok.lower()
    if tok in _PUNCT or low in lx.STOP_WORDS or len(low) < 3 or _is_adjective(low):
        return False
    if any(ch.isdigit() for ch in low) or (i > 0 and tok[:1].isupper()):
        return False  # numbers, and capitalised words mid-sentence (proper names)
    if low.endswith("ing") and low not in lx.ING_NOUNS:
        return False
    prev = tokens[i - 1].lower() if i > 0 else ""
    base = verb_base(low)
    after_verb = bool(verb_base(prev)) and prev not in lx.MODALS
    if base in lx.META_VERBS or (base and prev not in lx.DETERMINERS and not after_verb):
        return False
    return not (low.endswith("ed") and len(low) > 5 and low[-3] != "e")


def keywords(text: str, n: int = 8) -> list[str]:
    """The ``n`` most frequent content words (singular, lower case), ties by first position."""
    counts: dict[str, int] = {}
    for low in words(text):
        if low in lx.STOP_WORDS or len(low) < 3 or low.isdigit():
            continue
        key = _singular_word(low)
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts, key=lambda word: -counts[word])  # stable: ties keep first position
    return ranked[: max(int(n), 0)]


def strip_name(text: str) -> str:
    """``text`` without a leading product name ("Mystic Maze is a game ..." → "is a game ...")."""
    named = _NAME_IS.match(str(text))
    return str(text)[named.end(1) :] if named else str(text)


def _noun_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tokens in sentences(strip_name(text)):
        for i, tok in enumerate(tokens):
            if not _is_noun(tokens, i):
                continue
            key = _singular_word(tok.lower())
            if key in lx.GENERIC_NOUNS or tok.lower() in lx.GENERIC_NOUNS:
                continue
            counts[key] = counts.get(key, 0) + 1
    return counts


def domain_nouns(text: str, n: int = 8) -> list[str]:
    """The idea's main things (singular, lower case): nouns that are neither roles nor generic."""
    counts = _noun_counts(text)
    roles = {singular(role).rpartition(" ")[2] for role in user_roles(text, 10)}
    nouns = [noun for noun in counts if noun not in roles and noun not in lx.ROLE_NOUNS]
    return sorted(nouns, key=lambda noun: -counts[noun])[: max(int(n), 0)]


def _role_key(tokens: Sequence[str], i: int) -> str:  # noqa: PLR0911 - one exit per rule
    """The singular role named at ``tokens[i]``, or ``""``."""
    low = tokens[i].lower()
    single = _singular_word(low)
    nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
    prev = tokens[i - 1].lower() if i > 0 else ""
    if low in lx.PEOPLE_SYNONYMS or single in lx.PEOPLE_SYNONYMS:
        return "user"
    if single in lx.AMBIGUOUS_ROLES and single == low and prev not in lx.ROLE_CUES:
        return ""
    if single in lx.ROLE_NOUNS:
        if _singular_word(nxt) in lx.ROLE_HEADS and nxt != "user":
            return ""  # a modifier: "restaurant owners"
        if single == low and i + 1 < len(tokens) and _is_noun(tokens, i + 1):
            return ""  # singular noun used as a modifier: "user interface", "team deathmatch"
        return single
    agentive = low.endswith(("ers", "ors", "ists", "ians")) and len(low) > 5
    if not agentive or low in lx.NON_ROLE_AGENTS or not _is_noun(tokens, i):
        return ""
    acts = verb_base(nxt) and not nxt.endswith(("ing", "ed"))
    return single if prev in lx.ROLE_CUES or acts or nxt in ("can", "who", "will") else ""


def _with_modifier(tokens: Sequence[str], i: int, key: str) -> str:
    """``key`` with the singular noun before it when that noun qualifies it ("dog sitters")."""
    if key == "user" or i == 0:
        return key
    prev = tokens[i - 1]
    qualifies = _is_noun(tokens, i - 1) and _singular_word(prev.lower()) == prev.lower()
    if qualifies and prev.lower() not in lx.ROLE_NOUNS:
        return f"{prev.lower()} {key}"
    return key


def user_roles(text: str, n: int = 4) -> list[str]:
    """People and organisations the idea serves, plural and lower case, in order of mention.

    ``"A marketplace where local farmers sell produce to nearby restaurants"`` gives
    ``["farmers", "restaurants"]``. Returns ``[]`` when the text names nobody; callers choose
    (and record) a fallback.
    """
    found: list[str] = []
    for tokens in sentences(text):
        for i in range(len(tokens)):
            key = _role_key(tokens, i)
            if not key:
                continue
            phrase = plural(_with_modifier(tokens, i, key))
            if all(role.rpartition(" ")[2] != phrase.rpartition(" ")[2] for role in found):
                found.append(phrase)
    return found[: max(int(n), 0)]


def _head_phrase(text: str) -> list[str]:
    """Words of the idea's first noun phrase, without preamble ("I want to build a ...")."""
    first = sentences(text)[:1]
    tokens = [tok for tok in (first[0] if first else []) if tok not in _PUNCT]
    start = 0
    while start < len(tokens) and tokens[start].lower() in lx.PREAMBLE:
        start += 1
    head: list[str] = []
    for tok in tokens[start:]:
        if tok.lower() in lx.CLAUSE_BREAKERS or (head and verb_base(tok) and tok.endswith("s")):
            break
        if tok.lower() not in lx.STOP_WORDS and not tok.isdigit():
            head.append(tok)
    return head[-4:]


def _is_bare(head: Sequence[str]) -> bool:
    return all(w.lower() in lx.PRODUCT_TYPES or w.lower() in lx.GENRE_WORDS for w in head)


def title_from(text: str) -> str:
    """A short product title: a leading proper name ("Mystic Maze is a ...") or the head noun
    phrase, qualified by a role or the main noun when the head is only a genre or product type
    ("A marketplace where local farmers sell ..." → "Local Farmers Marketplace")."""
    named = _NAME_IS.match(str(text))
    if named and not all(w.lower() in lx.STOP_WORDS for w in named.group(1).split()):
        name = named.group(1).replace("_", " ").strip()
        title = re.sub(r"^(?:The|A|An)\s+", "", name) if len(name) > 12 else name
    else:
        head = _head_phrase(text)
        if _is_bare(head):
            head = _qualified(text, head)
        title = " ".join(w if w[:1].isupper() else w[:1].upper() + w[1:] for w in head)
    if len(title) < 5:  # IdeaSpec's minimum ("OPT is a software application …")
        title = f"{title} App".strip()
    return title[:120]


def _qualified(text: str, head: list[str]) -> list[str]:
    roles = user_roles(text, 1)
    if len(head) == 1 and head[0].lower() in lx.PRODUCT_TYPES and roles and roles != ["users"]:
        return _role_qualifier(text) + head
    head = [w for w in head if w.lower() not in ("software", "application")] or ["App"]
    nouns = domain_nouns(text, 1)
    explicit = _explicit_features(text, [])
    verb = explicit[0]["description"].split()[0] if explicit else ""
    generic = all(w.lower() in lx.PRODUCT_TYPES for w in head)
    if verb in lx.AGENT_NOUNS and (generic or not head):
        head = [lx.AGENT_NOUNS[verb]]
    return ([nouns[0]] if nouns else []) + (head or ["App"])


def _role_qualifier(text: str) -> list[str]:
    for tokens in sentences(text):
        for i in range(len(tokens)):
            key = _role_key(tokens, i)
            if key:
                phrase = plural(_with_modifier(tokens, i, key)).split()
                prev = tokens[i - 1].lower() if i > 0 else ""
                return ([prev] if prev in lx.TITLE_MODIFIERS else []) + phrase
    return []


def _take_phrase(tokens: Sequence[str], start: int) -> tuple[list[str], int]:
    """Words of the feature phrase starting at ``start`` and the index after it."""
    out = [verb_base(tokens[start]) or tokens[start].lower()]
    i = start + 1
    while i < len(tokens) and len(out) < _MAX_PHRASE_WORDS:
        low = tokens[i].lower()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tokens[i] in _PUNCT or low in _PHRASE_ENDERS:
            break
        if low in _COORDINATORS and nxt and _starts_feature(tokens, i + 1):
            break
        out.append(tokens[i])
        i += 1
    while len(out) > 1 and (out[-1].lower() in lx.STOP_WORDS or _is_adjective(out[-1].lower())):
        out.pop()
    return out, i


def _starts_feature(tokens: Sequence[str], i: int) -> bool:
    low = tokens[i].lower()
    base = verb_base(low)
    if not base or base in lx.META_VERBS or low.endswith(("ing", "ed")) or low in lx.ING_NOUNS:
        return False
    if i > 0 and tokens[i][:1].isupper():
        return False
    prev = tokens[i - 1].lower() if i > 0 else ""
    if verb_base(prev) and prev not in lx.MODALS and prev not in lx.META_VERBS:
        return False  # a verb right after another verb is its object ("bring book clubs")
    return prev not in lx.DETERMINERS or prev in ("and", "for")


def _actor(tokens: Sequence[str], verb_at: int, roles: Sequence[str]) -> str:
    for j in range(verb_at - 1, -1, -1):
        key = _role_key(tokens, j)
        if key and j > 0 and tokens[j - 1].lower() in lx.PREPOSITIONS:
            continue  # "... with doctors and pay": doctors is not the one paying
        if key:
            phrase = plural(_with_modifier(tokens, j, key))
            return phrase if phrase in roles else ""
    return ""


def _feature(tokens: Sequence[str], start: int, roles: Sequence[str]) -> tuple[dict[str, str], int]:
    phrase, end = _take_phrase(tokens, start)
    desc = " ".join(phrase)
    item = {"name": _name_of(phrase), "description": desc, "actor": _actor(tokens, start, roles)}
    return item, end


def _name_of(phrase: Sequence[str]) -> str:
    """A two-word feature name: the verb and its first noun ("Place order")."""
    rest = [j for j in range(1, len(phrase)) if _is_noun(phrase, j)]
    loose = [j for j in range(1, len(phrase)) if phrase[j].lower() not in lx.STOP_WORDS]
    rest = rest or loose[-1:]
    name = f"{phrase[0]} {phrase[rest[0]]}" if rest else phrase[0]
    return name[:1].upper() + name[1:]


def _explicit_features(text: str, roles: Sequence[str]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for tokens in sentences(strip_name(text)):
        i = 0
        while i < len(tokens) and i < 8 and tokens[i].lower() in lx.PREAMBLE:
            i += 1
        while i < len(tokens):
            if not _starts_feature(tokens, i):
                i += 1
                continue
            item, i = _feature(tokens, i, roles)
            if len(item["description"].split()) >= 2:
                found.append(item)
    return found


def _capabilities(text: str, roles: Sequence[str]) -> list[dict[str, str]]:
    vocab = [_singular_word(w) for w in words(text)] + [verb_base(w) for w in words(text)]
    triggers = [w for w in dict.fromkeys(vocab) if w in lx.CAPABILITIES][:3]
    nouns = domain_nouns(text, 1) or ["item"]
    thing = nouns[0]
    templates = [t for trig in triggers for t in lx.CAPABILITIES[trig]]
    found: list[dict[str, str]] = []
    for template in [*templates, *lx.GENERIC_CAPABILITIES]:
        index, _, pattern = template.partition(":")
        desc = pattern.format(thing=thing, things=plural(thing))
        actor = "" if index == "-" else roles[min(int(index), len(roles) - 1)] if roles else ""
        found.append({"name": _name_of(desc.split()), "description": desc, "actor": actor})
    return found


def features(text: str, n: int = 8) -> list[dict[str, str]]:
    """Up to ``n`` features, each ``{"name", "description", "actor"}``: first what the text says
    people do ("farmers sell produce" → "sell produce to nearby restaurants", actor
    ``"farmers"``), then capabilities its domain implies, then generic ones for its main noun.
    ``actor`` is one of :func:`user_roles` or ``""`` when any role fits."""
    roles = user_roles(text)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for item in [*_explicit_features(text, roles), *_capabilities(text, roles)]:
        keys = {item["description"].lower(), item["name"].lower()}
        if not keys & seen and len(out) < int(n):
            seen |= keys
            out.append(item)
    return out


@lru_cache(maxsize=65536)  # pure, and asked about the same words over and over
def stem(word: str) -> str:
    """A light stem for matching: lower case, no possessive, singular, without ``-ing``/``-ed``
    when at least four letters remain, and a doubled last consonant undone (``"Confirmed"`` →
    ``"confirm"``, ``"planned"`` → ``"plan"``, ``"restaurants'"`` → ``"restaurant"``)."""
    low = _singular_word(re.sub(r"['’]s?$", "", str(word).lower()))
    for suffix in ("ing", "ed"):
        if low.endswith(suffix) and len(low) - len(suffix) >= 4:
            low = low[: -len(suffix)]
            doubled = low[-1] == low[-2] and low[-1] not in "aeiouylsz"
            return low[:-1] if doubled else low
    return low


def terms(text: str) -> list[str]:
    """The distinct content terms of ``text``, stemmed, in order of first use: no stop words or
    question filler; ids such as ``F-01`` stay whole, other hyphenated words split, and digit
    groups join (``"$5,000"`` → ``"5000"``)."""
    return list(_terms(str(text)))


@lru_cache(maxsize=16384)
def _terms(text: str) -> tuple[str, ...]:  # cached: the Q/A/V agents read the same leaves often
    found: list[str] = []
    for token in words(_DIGIT_GROUP.sub("", text)):
        parts = [token] if _ID.match(token) else token.split("-")
        for part in parts:
            low = part.strip("'’")
            keep = low.isdigit() or (len(low) >= 2 and low not in lx.STOP_WORDS)
            if keep and low not in _QUESTION_FILLER and stem(low) not in found:
                found.append(stem(low))
    return tuple(found)
