"""Analyst feedback, allow-lists, job history, saved models and source watermarks."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from sentra_graph.store import schema as t
from sentra_graph.store.core import StoreCore, utcnow

FEEDBACK_LABELS = ("farm", "legit")
ALLOW_KINDS = ("account", "org", "ip")


class AdminMixin(StoreCore):
    # ---- feedback ------------------------------------------------------------------------
    def add_feedback(
        self, account_id: str, label: str, note: str | None = None, author: str | None = None
    ) -> int:
        if label not in FEEDBACK_LABELS:
            raise ValueError(f"label must be one of {FEEDBACK_LABELS}, found {label!r}")
        with self.begin() as conn:
            result = conn.execute(
                t.feedback.insert().values(
                    account_id=account_id,
                    label=label,
                    note=note,
                    author=author,
                    created_at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def feedback_labels(self) -> pd.DataFrame:
        """The latest label per account: account_id, label, note, author, created_at."""
        f = t.feedback
        with self.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(sa.select(f).order_by(f.c.created_at, f.c.feedback_id))
                .mappings()
                .all(),
                columns=list(f.c.keys()),
            )
        return frame.drop_duplicates("account_id", keep="last").reset_index(drop=True)

    # ---- allow-lists ---------------------------------------------------------------------
    def add_allow(self, kind: str, value: str, note: str | None = None) -> None:
        if kind not in ALLOW_KINDS:
            raise ValueError(f"allow-list kind must be one of {ALLOW_KINDS}, found {kind!r}")
        with self.begin() as conn:
            conn.execute(
                t.allowlist.delete().where(
                    (t.allowlist.c.kind == kind) & (t.allowlist.c.value == value)
                )
            )
            conn.execute(
                t.allowlist.insert().values(kind=kind, value=value, note=note, created_at=utcnow())
            )

    def remove_allow(self, kind: str, value: str) -> bool:
        with self.begin() as conn:
            result = conn.execute(
                t.allowlist.delete().where(
                    (t.allowlist.c.kind == kind) & (t.allowlist.c.value == value)
                )
            )
            return result.rowcount > 0

    def allowlist(self) -> pd.DataFrame:
        with self.connect() as conn:
            return pd.DataFrame(
                conn.execute(sa.select(t.allowlist).order_by("kind", "value")).mappings().all(),
                columns=list(t.allowlist.c.keys()),
            )

    # ---- job history ---------------------------------------------------------------------
    def job_started(self, job: str, details: dict | None = None) -> int:
        with self.begin() as conn:
            result = conn.execute(
                t.job_history.insert().values(
                    job=job, started_at=utcnow(), status="running", details=details
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def job_finished(
        self, job_run_id: int, status: str, error: str | None = None, details: dict | None = None
    ) -> None:
        values: dict[str, Any] = {"finished_at": utcnow(), "status": status, "error": error}
        if details is not None:
            values["details"] = details
        with self.begin() as conn:
            conn.execute(
                t.job_history.update()
                .where(t.job_history.c.job_run_id == job_run_id)
                .values(**values)
            )

    def job_history(self, limit: int = 100) -> pd.DataFrame:
        j = t.job_history
        with self.connect() as conn:
            return pd.DataFrame(
                conn.execute(
                    sa.select(j).order_by(j.c.started_at.desc(), j.c.job_run_id.desc()).limit(limit)
                )
                .mappings()
                .all(),
                columns=list(j.c.keys()),
            )

    def get_job(self, job_run_id: int) -> dict | None:
        """One job execution (job_run_id, job, started_at, finished_at, status, error,
        details), or None."""
        j = t.job_history
        with self.connect() as conn:
            row = conn.execute(sa.select(j).where(j.c.job_run_id == job_run_id)).mappings().first()
        return dict(row) if row else None

    # ---- saved models --------------------------------------------------------------------
    def save_model(self, name: str, blob: bytes, meta: dict | None = None) -> None:
        with self.begin() as conn:
            conn.execute(t.models.delete().where(t.models.c.name == name))
            conn.execute(
                t.models.insert().values(name=name, blob=blob, meta=meta, created_at=utcnow())
            )

    def load_model(self, name: str) -> tuple[bytes, dict] | None:
        with self.connect() as conn:
            row = conn.execute(
                sa.select(t.models.c.blob, t.models.c.meta).where(t.models.c.name == name)
            ).first()
        return (bytes(row[0]), row[1] or {}) if row else None

    # ---- source watermarks ---------------------------------------------------------------
    def get_watermark(self, source: str) -> str | None:
        with self.connect() as conn:
            return conn.execute(
                sa.select(t.source_state.c.watermark).where(t.source_state.c.source == source)
            ).scalar()

    def set_watermark(self, source: str, watermark: str) -> None:
        with self.begin() as conn:
            conn.execute(t.source_state.delete().where(t.source_state.c.source == source))
            conn.execute(
                t.source_state.insert().values(
                    source=source, watermark=watermark, updated_at=utcnow()
                )
            )

    # ---- API keys managed at run time (configured keys live in settings) -----------------
    def add_api_key(self, key_hash: str, scopes: str, note: str | None = None) -> None:
        with self.begin() as conn:
            conn.execute(t.api_keys.delete().where(t.api_keys.c.key_hash == key_hash))
            conn.execute(
                t.api_keys.insert().values(
                    key_hash=key_hash, scopes=scopes, note=note, created_at=utcnow()
                )
            )

    def remove_api_key(self, key_hash: str) -> bool:
        with self.begin() as conn:
            return (
                conn.execute(t.api_keys.delete().where(t.api_keys.c.key_hash == key_hash)).rowcount
                > 0
            )

    def api_keys(self) -> pd.DataFrame:
        with self.connect() as conn:
            return pd.DataFrame(
                conn.execute(sa.select(t.api_keys)).mappings().all(),
                columns=list(t.api_keys.c.keys()),
            )
