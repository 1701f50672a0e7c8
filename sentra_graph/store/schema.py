"""The store's tables, as SQLAlchemy Core metadata.

Migrations in ``migrations/versions`` create and change these tables; this module is the
model the code reads and writes through. Timestamps are UTC. Columns marked *derived* are
computed by the engine, not given by the input contract.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)

metadata = MetaData()

TS = DateTime(timezone=True)
ID_TEXT = Text().with_variant(Text(collation="C"), "postgresql")

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("created_at", TS, nullable=False),
    Column("org_id", Text),
    Column("email_domain", Text),
    Column("payment_fingerprint", Text),
    Column("signup_ip", Text),
    Column("country", Text),
    # True while the account is known only from its requests (created_at = first seen).
    Column("inferred", Boolean, nullable=False, server_default=text("false")),
    Index("ix_accounts_created_at", "created_at"),
)

requests = Table(
    "requests",
    metadata,
    # byte-order comparisons ("C"): an opaque id needs no language rules, and the primary key
    # is most of a bulk load's index cost (about a tenth less with "C")
    Column("request_id", ID_TEXT, primary_key=True),
    Column("ts", TS, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("ip", Text, nullable=False),
    Column("api_key_id", Text),
    Column("user_agent", Text),
    Column("tls_fingerprint", Text),
    Column("model", Text),
    Column("prompt", Text),
    Column("prompt_embedding", Text),  # JSON array of floats, as given by the gateway
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("status", Integer),
    # derived: bit flags of prompt markers (see sentra_graph.features.markers), set at ingest
    Column("markers", SmallInteger, nullable=False, server_default=text("0")),
    # BRIN on PostgreSQL: rows arrive in about time order, so a few pages per block range
    # serve the window scans at next to no cost per insert (a B-tree on SQLite).
    Index("ix_requests_ts", "ts", postgresql_using="brin"),
)

# The oldest and newest request time stored, kept by every load (one row, ``id`` = 1): a BRIN
# index cannot answer ``max(ts)`` without reading the whole table.
request_extent = Table(
    "request_extent",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("oldest", TS, nullable=False),
    Column("newest", TS, nullable=False),
)

# derived: each request's prompt-template cluster, assigned once by the featurize stage (a
# request without a row here is not assigned yet). A narrow table of its own, appended to by
# COPY, instead of an UPDATE of every request; keyed by (ts, request_id) so that reads join it
# within a window's ts range.
request_templates = Table(
    "request_templates",
    metadata,
    Column("ts", TS, primary_key=True),
    Column("request_id", ID_TEXT, primary_key=True),  # compared as in ``requests``
    Column("template_id", Integer, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("status", Text, nullable=False),  # running | succeeded | failed
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("published_at", TS),
    Column("window_start", TS),
    Column("window_end", TS),
    Column("params", JSON),
    Column("timings", JSON),
    Column("stats", JSON),
    Column("error", Text),
    Index("ix_runs_published_at", "published_at"),
)

clusters = Table(
    "clusters",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("cluster_id", Text, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("decision", Text, nullable=False),
    Column("reasons", JSON),
    Column("evidence", JSON),
)

memberships = Table(
    "memberships",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("account_id", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("strength", Float, nullable=False),
    Index("ix_memberships_cluster", "run_id", "cluster_id"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("account_id", Text, primary_key=True),
    Column("score", Float, nullable=False),
    Column("decision", Text, nullable=False),
    Column("cluster_id", Text),
    Column("reasons", JSON),
    Column("evidence", JSON),
)

current_decisions = Table(
    "current_decisions",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("decision", Text, nullable=False),
    Column("cluster_id", Text),
    Column("reasons", JSON),
    Column("scored_at", TS, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("feedback_id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Text, nullable=False),
    Column("label", Text, nullable=False),  # farm | legit
    Column("note", Text),
    Column("author", Text),
    Column("created_at", TS, nullable=False),
    Index("ix_feedback_account", "account_id"),
)

allowlist = Table(
    "allowlist",
    metadata,
    Column("kind", Text, primary_key=True),  # account | org | ip
    Column("value", Text, primary_key=True),
    Column("note", Text),
    Column("created_at", TS, nullable=False),
)

job_history = Table(
    "job_history",
    metadata,
    Column("job_run_id", Integer, primary_key=True, autoincrement=True),
    Column("job", Text, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("status", Text, nullable=False),  # running | succeeded | failed | skipped
    Column("error", Text),
    Column("details", JSON),
    Index("ix_job_history_job", "job", "started_at"),
)

models = Table(
    "models",
    metadata,
    Column("name", Text, primary_key=True),
    Column("created_at", TS, nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("meta", JSON),
)

source_state = Table(
    "source_state",
    metadata,
    Column("source", Text, primary_key=True),
    Column("watermark", Text),
    Column("updated_at", TS, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", Text, primary_key=True),  # hex SHA-256 of the key, never the key
    Column("scopes", Text, nullable=False),
    Column("note", Text),
    Column("created_at", TS, nullable=False),
)
