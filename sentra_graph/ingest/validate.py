"""Row validation: records as read in, canonical rows and a reason per rejected row out.

Pure (DataFrames in and out, no I/O) and vectorised: Python loops run only over rows already
known to be bad (to word their reasons), over distinct IP strings that are not plain dotted
IPv4, and over embeddings given as lists.

Canonical forms: text as Arrow-backed strings (an empty string means "not given"),
timestamps as UTC ``datetime64[us]``, IPs in their normal text form (IPv4-mapped IPv6 becomes
IPv4), integers as nullable ``Int64`` within PostgreSQL's 32-bit range, embeddings as compact
JSON text.

>>> frame = pd.DataFrame(
...     {"account_id": ["a", "b"], "created_at": ["2026-01-01T10:00:00+02:00", "soon"]}
... )
>>> checked = check_rows("accounts", frame)
>>> checked.rows["created_at"].tolist()
[Timestamp('2026-01-01 08:00:00+0000', tz='UTC')]
>>> checked.reasons
{1: "created_at: not an RFC 3339 timestamp: 'soon'"}
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "ACCOUNTS",
    "FIELDS",
    "KINDS",
    "REQUESTS",
    "Checked",
    "Field",
    "check_kind",
    "check_rows",
    "field_names",
]

ACCOUNTS = "accounts"
REQUESTS = "requests"

TEXT = "text"
TIMESTAMP = "timestamp"
IP = "ip"
INTEGER = "integer"
EMBEDDING = "embedding"


@dataclass(frozen=True)
class Field:
    """One contract column: its name, its type and whether a record must give it."""

    name: str
    type: str
    required: bool = False


FIELDS: dict[str, tuple[Field, ...]] = {
    ACCOUNTS: (
        Field("account_id", TEXT, required=True),
        Field("created_at", TIMESTAMP, required=True),
        Field("org_id", TEXT),
        Field("email_domain", TEXT),
        Field("payment_fingerprint", TEXT),
        Field("signup_ip", IP),
        Field("country", TEXT),
    ),
    REQUESTS: (
        Field("request_id", TEXT, required=True),
        Field("ts", TIMESTAMP, required=True),
        Field("account_id", TEXT, required=True),
        Field("ip", IP, required=True),
        Field("api_key_id", TEXT),
        Field("user_agent", TEXT),
        Field("tls_fingerprint", TEXT),
        Field("model", TEXT),
        Field("prompt", TEXT),
        Field("prompt_embedding", EMBEDDING),
        Field("prompt_tokens", INTEGER),
        Field("completion_tokens", INTEGER),
        Field("status", INTEGER),
    ),
}
KINDS = tuple(FIELDS)


def _text_dtype() -> pd.StringDtype:
    try:  # pandas >= 2.3: the dtype pandas 3 uses for text by default, so no conversions
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:
        return pd.StringDtype("pyarrow")


TEXT_DTYPE = _text_dtype()
"""Arrow-backed strings: vectorised regular expressions run in Arrow's RE2, not in Python."""

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""The store's integer columns are PostgreSQL ``integer``."""

_RFC3339 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
"""RFC 3339 date-time; the offset may be left out (then it is UTC), as the contract allows."""
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
"""Dotted IPv4 already in normal form (no leading zeros): kept as written."""
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_SPACE = r"[ \t\n\r]"
"""JSON's whitespace. The patterns spell classes out (no ``\\s``, ``\\d``) so that pandas
runs them in Arrow's RE2 instead of falling back to Python's ``re`` row by row."""
_NUMBER_ARRAY = rf"\[{_SPACE}*{_NUMBER}(?:{_SPACE}*,{_SPACE}*{_NUMBER})*{_SPACE}*\]"
_NUMBER_ARRAY_RE = re.compile(_NUMBER_ARRAY)
_SHOWN_CHARS = 60


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a record kind, else raise ``ValueError`` naming the choices.

    >>> check_kind("requests")
    'requests'
    """
    if kind not in FIELDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, found {kind!r}")
    return kind


def field_names(kind: str) -> list[str]:
    """The contract columns of ``kind``, in contract order.

    >>> field_names("accounts")[:2]
    ['account_id', 'created_at']
    """
    return [f.name for f in FIELDS[check_kind(kind)]]


@dataclass
class Checked:
    """The outcome of checking one chunk.

    rows: the valid rows, ready to load: canonical columns in contract order (requests also
        carry ``markers``); requests are unique by request_id (the first one wins), accounts
        by account_id (later records win, a field they leave out keeps the earlier value).
    reasons: position in the input -> why that row was rejected.
    valid: how many input rows passed the checks.
    duplicates: valid requests dropped because an earlier row repeats their request_id.
    """

    rows: pd.DataFrame
    reasons: dict[int, str] = field(default_factory=dict)
    valid: int = 0
    duplicates: int = 0


Problem = tuple[np.ndarray, str]
"""A boolean mask over the rows and the description of what is wrong with them."""


def check_rows(kind: str, frame: pd.DataFrame) -> Checked:
    """Check and canonicalise the records of ``frame`` (contract columns; others ignored).

    A column that is absent, null or an empty string means "not given".

    >>> ips = ["::ffff:10.0.0.1", "10.0.0.1", "10.0.0.300"]
    >>> frame = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "ts": "2026-01-01 00:00:00",
    ...                       "account_id": "a", "ip": ips})
    >>> checked = check_rows("requests", frame)
    >>> checked.rows["ip"].tolist(), checked.duplicates, checked.reasons
    (['10.0.0.1'], 1, {2: "ip: not an IP address: '10.0.0.300'"})
    """
    fields = FIELDS[check_kind(kind)]
    frame = frame.reset_index(drop=True)
    n = len(frame)
    reasons: dict[int, list[str]] = {}
    columns: dict[str, pd.Series] = {}
    for spec in fields:
        given = frame[spec.name] if spec.name in frame.columns else None
        values, problems = _CONVERT[spec.type](given, n)
        for mask, description in problems:
            for position in np.flatnonzero(mask):
                shown = _show(given.iloc[position]) if given is not None else ""
                reasons.setdefault(int(position), []).append(f"{spec.name}: {description}: {shown}")
        if spec.required:
            missing = _mask(values.isna())
            for mask, _ in problems:
                missing &= ~mask
            for position in np.flatnonzero(missing):
                reasons.setdefault(int(position), []).append(
                    f"missing required field {spec.name!r}"
                )
        columns[spec.name] = values
    rows = pd.DataFrame(columns)
    if reasons:
        rows = rows.drop(index=list(reasons))
    checked = Checked(
        rows=rows,
        reasons={position: "; ".join(parts) for position, parts in sorted(reasons.items())},
        valid=len(rows),
    )
    return _finish_requests(checked) if kind == REQUESTS else _finish_accounts(checked)


def _finish_requests(checked: Checked) -> Checked:
    repeated = _mask(checked.rows["request_id"].duplicated(keep="first"))
    checked.rows = checked.rows[~repeated].copy()
    checked.duplicates = int(repeated.sum())
    return checked


def _finish_accounts(checked: Checked) -> Checked:
    rows = checked.rows
    rows["email_domain"] = rows["email_domain"].str.lower()
    rows["country"] = rows["country"].str.upper()
    if _mask(rows["account_id"].duplicated()).any():
        # ``last`` skips nulls: a later record that leaves a field out keeps the earlier value,
        # exactly as when the two records arrive in separate chunks.
        rows = rows.groupby("account_id", sort=False, as_index=False).last()
    checked.rows = rows
    return checked


# ---- converters: (column or None, row count) -> (canonical values, problems) ------------------


def _text(given: pd.Series | None, n: int) -> tuple[pd.Series, list[Problem]]:
    if given is None or _mask(given.isna()).all():
        return pd.Series([None] * n, dtype=TEXT_DTYPE), []
    inferred = pd.api.types.infer_dtype(given, skipna=True)
    problems: list[Problem] = []
    if inferred == "string":
        values = given.astype(TEXT_DTYPE)
    elif inferred == "integer":
        values = given.astype("Int64").astype(TEXT_DTYPE)
    else:
        converted = [_as_text(v) for v in given]
        wrong = np.array([v is _WRONG for v in converted], dtype=bool)
        values = pd.Series([None if v is _WRONG else v for v in converted], dtype=TEXT_DTYPE)
        problems.append((wrong, "expected text"))
    values = values.mask(_mask(values == ""))
    if _has_nul(values):
        nul = _mask(values.str.contains("\x00", regex=False))
        problems.append((nul, "contains a NUL character"))
    return values, problems


_WRONG = object()
"""Marks a value of a type that cannot stand for text (a float, a list, a bool...)."""


def _as_text(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    return _WRONG


def _has_nul(values: pd.Series) -> bool:
    """Whether any string holds a NUL byte (PostgreSQL text cannot), scanning Arrow's buffers."""
    array = pa.chunked_array(pa.array(values, from_pandas=True))
    for chunk in array.chunks:
        data = chunk.buffers()[2]
        if data is not None and data.size and not np.frombuffer(data, dtype=np.uint8).all():
            return True
    return False


def _timestamp(given: pd.Series | None, n: int) -> tuple[pd.Series, list[Problem]]:
    empty = pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]")
    if given is None or _mask(given.isna()).all():
        return empty, []
    if isinstance(given.dtype, pd.DatetimeTZDtype):
        return given.dt.tz_convert("UTC").dt.as_unit("us"), []
    if pd.api.types.is_datetime64_dtype(given.dtype):
        return given.dt.tz_localize("UTC").dt.as_unit("us"), []
    inferred = pd.api.types.infer_dtype(given, skipna=True)
    if inferred == "string":
        values = _parse_rfc3339(given.astype(TEXT_DTYPE))
    else:
        is_text = np.array([isinstance(v, str) for v in given], dtype=bool)
        is_time = np.array([isinstance(v, dt.datetime | np.datetime64) for v in given], bool)
        values = empty.copy()
        if is_text.any():
            values[is_text] = _parse_rfc3339(given[is_text].astype(TEXT_DTYPE))
        if is_time.any():
            values[is_time] = pd.to_datetime(given[is_time], utc=True).dt.as_unit("us")
    bad = _mask(given.notna()) & _mask(values.isna())
    return values, [(bad, "not an RFC 3339 timestamp")]


def _parse_rfc3339(text: pd.Series) -> pd.Series:
    shaped = _mask(text.str.fullmatch(_RFC3339))
    parsed = _to_utc(text.where(shaped))
    retry = shaped & _mask(parsed.isna())
    if retry.any():  # lower-case 't' / 'z' are valid RFC 3339 but not understood by pandas
        parsed[retry] = _to_utc(text[retry].str.upper())
    return parsed


def _to_utc(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").dt.as_unit("us")


def _ip(given: pd.Series | None, n: int) -> tuple[pd.Series, list[Problem]]:
    text, problems = _text(given, n)
    plain = _mask(text.str.fullmatch(_IPV4))
    other = _mask(text.notna()) & ~plain
    if not other.any():
        return text, problems
    normal = {value: _normal_ip(value) for value in pd.unique(text[other])}
    values = text.copy()
    values[other] = text[other].map(normal).astype(TEXT_DTYPE)
    problems.append((other & _mask(values.isna()), "not an IP address"))
    return values, problems


def _normal_ip(value: str) -> str | None:
    """The normal text form of an IP address, or None if ``value`` is not one.

    >>> _normal_ip(" 2001:DB8::0:1 "), _normal_ip("::ffff:192.0.2.1"), _normal_ip("10.1")
    ('2001:db8::1', '192.0.2.1', None)
    """
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _integer(given: pd.Series | None, n: int) -> tuple[pd.Series, list[Problem]]:
    if given is None or _mask(given.isna()).all():
        return pd.Series(pd.NA, index=range(n), dtype="Int64"), []
    dtype = given.dtype
    if pd.api.types.is_bool_dtype(dtype):
        numbers = pd.Series(np.nan, index=range(n))
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        numbers = given.astype("float64")
    elif pd.api.types.infer_dtype(given, skipna=True) == "string":
        numbers = _parse_integers(given.astype(TEXT_DTYPE))
    else:
        not_bool = given.map(lambda v: not isinstance(v, bool | np.bool_))
        numbers = pd.to_numeric(given.where(not_bool), errors="coerce").astype("float64")
    whole = _mask(numbers.notna()) & _mask(numbers.round() == numbers)
    within = whole & _mask(numbers.between(INT32_MIN, INT32_MAX))
    values = numbers.where(within).astype("Int64")
    bad = _mask(given.notna()) & ~within
    return values, [(bad, "not a 32-bit integer")]


def _parse_integers(text: pd.Series) -> pd.Series:
    """Decimal strings to float64 (NaN where not a number); Arrow's cast when all parse."""
    try:
        return pd.Series(
            pa.array(text, from_pandas=True).cast(pa.int64()).to_numpy(zero_copy_only=False),
            dtype="float64",
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(text, errors="coerce").astype("float64")


def _embedding(given: pd.Series | None, n: int) -> tuple[pd.Series, list[Problem]]:
    if given is None or _mask(given.isna()).all():
        return pd.Series([None] * n, dtype=TEXT_DTYPE), []
    if pd.api.types.infer_dtype(given, skipna=True) == "string":
        text = given.astype(TEXT_DTYPE)
        shaped = _mask(text.str.fullmatch(_NUMBER_ARRAY))
        values = text.where(shaped).str.replace(f"{_SPACE}+", "", regex=True)
    else:
        values = pd.Series([_embedding_text(v) for v in given], dtype=TEXT_DTYPE)
    bad = _mask(given.notna()) & _mask(values.isna())
    return values, [(bad, "not a non-empty array of finite numbers")]


def _embedding_text(value: object) -> str | None:
    """Compact JSON text of an embedding given as a list, an array or JSON text.

    >>> _embedding_text([1, 0.5]), _embedding_text("[ 1, 2 ]"), _embedding_text([True])
    ('[1.0,0.5]', '[1,2]', None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return re.sub(f"{_SPACE}+", "", value) if _NUMBER_ARRAY_RE.fullmatch(value) else None
    if not isinstance(value, list | tuple | np.ndarray):
        return None
    if any(isinstance(v, bool | np.bool_) for v in value):
        return None
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        return None
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        return None
    return json.dumps(array.tolist(), separators=(",", ":"))


_CONVERT: dict[str, Callable[[pd.Series | None, int], tuple[pd.Series, list[Problem]]]] = {
    TEXT: _text,
    TIMESTAMP: _timestamp,
    IP: _ip,
    INTEGER: _integer,
    EMBEDDING: _embedding,
}


def _mask(values: pd.Series | np.ndarray) -> np.ndarray:
    """A plain boolean array from a boolean Series that may hold missing values (as False)."""
    if isinstance(values, pd.Series):
        return values.fillna(False).to_numpy(dtype=bool, copy=True)
    return np.array(values, dtype=bool)


def _show(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
