"""The oracle section of a v3 segment: the one oracle update a segment may start with, as words.

A slot's record has two words and an oracle update does not fit one (a risk array per instrument),
so every segment starts with a fixed-shape section (docs/v3.md): a header word (has_update,
timestamp, the timestamp of the update it follows), then for each instrument of the genesis table (sorted by id) one word of
`flags | mark | funding | settlement` and `ceil(n_scenarios / 3)` words of risk values, packed as
the records are (`verifier.pubdata.get_places`: 31-byte words, first field most significant,
signed values offset by 2^(bits-1), but only where listed: an unlisted value is 0 and packs as 0). A segment without an update has all-zero words, which the contract
supplies itself.

Flags say what the update lists for the instrument: `FLAG_MARK`, `FLAG_FUNDING`, `FLAG_RISK`,
`FLAG_SETTLEMENT`; a value not listed is 0. The section is a function of the signed update and
the table, and back (`decode_oracle_words` gives the update's fields for its signature check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from verifier.pubdata import WORD_BYTES, FieldPlace, MalformedRecord, RecordField, get_places
from verifier.wire import FUNDING_BITS, PRICE_BITS, RISK_VALUE_BITS, TIMESTAMP_BITS

FLAG_MARK, FLAG_FUNDING, FLAG_RISK, FLAG_SETTLEMENT = 1, 2, 4, 8
FLAG_BITS = 4
HEADER_FIELDS = (RecordField("has_update", 1), RecordField("timestamp", TIMESTAMP_BITS), RecordField("previous_timestamp", TIMESTAMP_BITS))
ENTRY_FIELDS = (
    RecordField("flags", FLAG_BITS),
    RecordField("mark", PRICE_BITS),
    RecordField("funding", FUNDING_BITS + 1, signed=True),
    RecordField("settlement", PRICE_BITS),
)
RISK_FIELD = RecordField("risk", RISK_VALUE_BITS + 1, signed=True)
RISK_PER_WORD = WORD_BYTES // RISK_FIELD.width  # 3 values of 8 bytes


@dataclass
class OracleEntry:
    """One instrument's part of an update (zeros where not listed)."""

    flags: int = 0
    mark: int = 0
    funding: int = 0
    settlement: int = 0
    risk: list[int] = field(default_factory=list)


@dataclass
class OracleSection:
    has_update: int
    timestamp: int
    entries: list[OracleEntry]  # table order
    previous_timestamp: int = 0  # the update it follows (the chain of oracle updates)


@dataclass(frozen=True)
class OracleShape:
    table: tuple[int, ...]  # instrument ids, sorted
    n_scenarios: int

    @property
    def risk_words(self) -> int:
        return -(-self.n_scenarios // RISK_PER_WORD)

    @property
    def n_words(self) -> int:
        return 1 + len(self.table) * (1 + self.risk_words)


HEADER_PLACES: tuple[FieldPlace, ...] = get_places(HEADER_FIELDS)
ENTRY_PLACES: tuple[FieldPlace, ...] = get_places(ENTRY_FIELDS)


def get_risk_place(index: int) -> tuple[int, int]:
    """(risk word, bit shift) of the index-th risk value of an entry."""
    word, slot = divmod(index, RISK_PER_WORD)
    return word, 8 * (WORD_BYTES - (slot + 1) * RISK_FIELD.width)


def build_empty_section(shape: OracleShape) -> OracleSection:
    return OracleSection(0, 0, [OracleEntry(risk=[0] * shape.n_scenarios) for _ in shape.table])


def compute_oracle_section(update: Any | None, shape: OracleShape) -> OracleSection:
    """The section of a signed `OracleUpdate` (None: no update in this segment)."""
    section = build_empty_section(shape)
    if update is None:
        return section
    section.has_update, section.timestamp, section.previous_timestamp = 1, update.timestamp, update.previous_timestamp
    index = {instrument: i for i, instrument in enumerate(shape.table)}

    def entry(instrument: int) -> OracleEntry:
        # the update lists instruments of the genesis table only (the rules refuse others)
        if instrument not in index:
            raise MalformedRecord(f"oracle update lists instrument {instrument}, not in the table {list(shape.table)}")
        return section.entries[index[instrument]]

    for item in update.marks:
        e = entry(item.instrument)
        e.flags |= FLAG_MARK
        e.mark = item.price
    for item in update.funding:
        e = entry(item.market)
        e.flags |= FLAG_FUNDING
        e.funding = item.index
    for item in update.risk_arrays:
        e = entry(item.instrument)
        # one value per scenario of the grid (the rules refuse other lengths)
        if len(item.values) != shape.n_scenarios:
            raise MalformedRecord(f"risk array of instrument {item.instrument} has {len(item.values)} values, the grid {shape.n_scenarios}")
        e.flags |= FLAG_RISK
        e.risk = list(item.values)
    for item in update.settlements:
        e = entry(item.instrument)
        e.flags |= FLAG_SETTLEMENT
        e.settlement = item.price
    return section


def _put(word: int, f: RecordField, value: int, shift: int, listed: bool = True) -> int:
    # a signed value carries its offset only when listed, so an unlisted one (0) packs as 0 and a
    # section without an update is all zero words
    packed = value + f.offset if listed else value
    # each value within its field's width (one section, one word form)
    if not 0 <= packed < 1 << f.bits:
        raise MalformedRecord(f"oracle {f.name} = {value} does not fit {f.bits} bits")
    return word | packed << shift


def compute_oracle_words(section: OracleSection, shape: OracleShape) -> list[int]:
    words = [0] * shape.n_words
    header = {"has_update": section.has_update, "timestamp": section.timestamp, "previous_timestamp": section.previous_timestamp}
    for place in HEADER_PLACES:
        words[0] = _put(words[0], place.field, header[place.field.name], place.shift)
    at = 1
    for e in section.entries:
        values = {"flags": e.flags, "mark": e.mark, "funding": e.funding, "settlement": e.settlement}
        for place in ENTRY_PLACES:
            listed = place.field.name != "funding" or bool(e.flags & FLAG_FUNDING)
            words[at] = _put(words[at], place.field, values[place.field.name], place.shift, listed)
        for k, value in enumerate(e.risk):
            word, shift = get_risk_place(k)
            words[at + 1 + word] = _put(words[at + 1 + word], RISK_FIELD, value, shift, bool(e.flags & FLAG_RISK))
        at += 1 + shape.risk_words
    return words


def _get(word: int, f: RecordField, shift: int) -> int:
    return ((word >> shift) & ((1 << (8 * f.width)) - 1))


def decode_oracle_words(words: Sequence[int], shape: OracleShape) -> OracleSection:
    """Words back to a section: strict (no stray bits, values in range, nothing listed without an
    update, unlisted values 0), so one section has one word form."""
    # the shape's word count, each a 248-bit integer
    if len(words) != shape.n_words or any(w.__class__ is not int or not 0 <= w < 1 << (8 * WORD_BYTES) for w in words):
        raise MalformedRecord(f"an oracle section is {shape.n_words} words of {WORD_BYTES} bytes")
    section = build_empty_section(shape)
    section.has_update = _get(words[0], HEADER_FIELDS[0], HEADER_PLACES[0].shift)
    section.timestamp = _get(words[0], HEADER_FIELDS[1], HEADER_PLACES[1].shift)
    section.previous_timestamp = _get(words[0], HEADER_FIELDS[2], HEADER_PLACES[2].shift)
    at = 1
    for e in section.entries:
        raw = {p.field.name: _get(words[at], p.field, p.shift) for p in ENTRY_PLACES}
        e.flags, e.mark, e.settlement = raw["flags"], raw["mark"], raw["settlement"]
        e.funding = raw["funding"] - (ENTRY_FIELDS[2].offset if e.flags & FLAG_FUNDING else 0)
        e.risk = []
        for k in range(shape.n_scenarios):
            word, shift = get_risk_place(k)
            offset = RISK_FIELD.offset if e.flags & FLAG_RISK else 0
            e.risk.append(_get(words[at + 1 + word], RISK_FIELD, shift) - offset)
        # unlisted values are 0
        listed = {"mark": FLAG_MARK, "funding": FLAG_FUNDING, "settlement": FLAG_SETTLEMENT}
        for name, flag in listed.items():
            if not e.flags & flag and getattr(e, name) != 0:
                raise MalformedRecord(f"oracle section lists no {name} but carries one")
        if not e.flags & FLAG_RISK and any(e.risk):
            raise MalformedRecord("oracle section lists no risk array but carries values")
        at += 1 + shape.risk_words
    # no update, nothing listed
    if not section.has_update and (section.timestamp or section.previous_timestamp or any(e.flags for e in section.entries)):
        raise MalformedRecord("oracle section without an update lists values")
    if compute_oracle_words(section, shape) != list(words):
        raise MalformedRecord("oracle section has bits outside its fields")
    return section


def get_update_fields(section: OracleSection, shape: OracleShape) -> dict[str, Any] | None:
    """The signed update's fields (lists sorted by instrument, as the wire model requires); None
    when the section carries no update."""
    if not section.has_update:
        return None
    pairs = list(zip(shape.table, section.entries))
    return {
        "type": "oracle_update",
        "timestamp": section.timestamp,
        "previous_timestamp": section.previous_timestamp,
        "marks": [{"instrument": i, "price": e.mark} for i, e in pairs if e.flags & FLAG_MARK],
        "funding": [{"market": i, "index": e.funding} for i, e in pairs if e.flags & FLAG_FUNDING],
        "risk_arrays": [{"instrument": i, "values": e.risk} for i, e in pairs if e.flags & FLAG_RISK],
        "settlements": [{"instrument": i, "price": e.settlement} for i, e in pairs if e.flags & FLAG_SETTLEMENT],
    }
