"""The prompt journal: every prompt Pistachio sees on every server, kept on disk.

ComfyUI forgets its history when it restarts and a pod's disappears when the pod
stops; the journal keeps what a person needs to find a result again or run it
once more: the workflow, its seed and prompt text, the models and LoRAs it used,
the outputs, timings, status and the API prompt itself (to re-queue it).

One SQLite file in the data folder (WAL, so the app writes while ``pistachio
history`` reads), with a full-text index over the prompt text, workflow name and
model names. It is bounded: the oldest entries beyond ``max_entries`` and those
older than ``keep_days`` are dropped. All calls block: callers on an event loop
run them in a thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.comfy.tracker import PromptState
from pistachio_tui.comfy.types import HistoryEntry, OutputFile

#: Bounds a new user gets: plenty for months of work, a few hundred MB at most.
DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_KEEP_DAYS: float | None = None
FINAL_STATUSES = frozenset({"success", "error", "interrupted", "lost"})
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
_SCHEMA_VERSION = 1


class JournalError(Exception):
    """The journal file cannot be opened or written; the message says what to do."""


@dataclass(frozen=True)
class JournalEntry:
    """One prompt on one server as the journal keeps it."""

    server: str
    prompt_id: str
    #: "queued", "running", "success", "error", "interrupted" or "lost".
    status: str
    prompt: dict[str, Any] = field(default_factory=dict, repr=False)
    workflow: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: Output files as ``subfolder/filename`` (type "output" unless prefixed ``temp:``).
    outputs: tuple[str, ...] = ()
    error: str | None = None
    #: Filled from ``prompt`` when not given.
    seed: int | None = None
    positive: str | None = None
    models: tuple[str, ...] = ()
    #: The journal holds this prompt's API prompt (searches leave it out of ``prompt``: ``Journal.prompt_of``).
    prompt_kept: bool = False

    def __post_init__(self) -> None:
        if self.prompt:
            object.__setattr__(self, "prompt_kept", True)
        if self.prompt and (self.seed is None or self.positive is None or not self.models):
            seed, positive, models = describe_prompt(self.prompt)
            object.__setattr__(self, "seed", self.seed if self.seed is not None else seed)
            object.__setattr__(self, "positive", self.positive if self.positive is not None else positive)
            object.__setattr__(self, "models", self.models or models)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def describe_prompt(prompt: dict[str, Any]) -> tuple[int | None, str | None, tuple[str, ...]]:
    """The first seed, the positive prompt text and the model files of an API prompt."""
    # The workflow modules load on the first prompt described, not with the journal (start-up).
    from pistachio_tui.workflow.edit import find_params

    seed: int | None = None
    positive: str | None = None
    fallback_text: str | None = None
    for param in find_params(prompt):
        if param.kind == "seed" and seed is None and isinstance(param.value, int) and not isinstance(param.value, bool):
            seed = param.value
        elif param.kind == "prompt":
            if param.role == "positive" and positive is None:
                positive = str(param.value)
            elif fallback_text is None and param.role != "negative":
                fallback_text = str(param.value)
    models: list[str] = []
    for node in prompt.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for name, value in (inputs or {}).items() if isinstance(inputs, dict) else ():
            if (name.endswith("_name") and isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES)
                    and value not in models):
                models.append(value)
    return seed, positive if positive is not None else fallback_text, tuple(models)


_COLUMNS = ("server", "prompt_id", "status", "workflow", "queued_at", "started_at", "finished_at", "outputs",
            "error", "seed", "positive", "models", "prompt")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS prompts (
    id INTEGER PRIMARY KEY,
    server TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    status TEXT NOT NULL,
    workflow TEXT,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    seed INTEGER,
    positive TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    prompt TEXT NOT NULL DEFAULT '{{}}',
    seen_at REAL NOT NULL,
    UNIQUE (server, prompt_id)
);
CREATE INDEX IF NOT EXISTS prompts_seen ON prompts (seen_at);
CREATE INDEX IF NOT EXISTS prompts_seed ON prompts (seed);
CREATE INDEX IF NOT EXISTS prompts_server_seen ON prompts (server, seen_at);
CREATE INDEX IF NOT EXISTS prompts_status_seen ON prompts (status, seen_at);
CREATE VIRTUAL TABLE IF NOT EXISTS prompts_text USING fts5 (
    positive, workflow, models, content='prompts', content_rowid='id', tokenize='unicode61'
);
CREATE TRIGGER IF NOT EXISTS prompts_ai AFTER INSERT ON prompts BEGIN
    INSERT INTO prompts_text (rowid, positive, workflow, models) VALUES (new.id, new.positive, new.workflow, new.models);
END;
CREATE TRIGGER IF NOT EXISTS prompts_ad AFTER DELETE ON prompts BEGIN
    INSERT INTO prompts_text (prompts_text, rowid, positive, workflow, models)
        VALUES ('delete', old.id, old.positive, old.workflow, old.models);
END;
CREATE TRIGGER IF NOT EXISTS prompts_au AFTER UPDATE ON prompts BEGIN
    INSERT INTO prompts_text (prompts_text, rowid, positive, workflow, models)
        VALUES ('delete', old.id, old.positive, old.workflow, old.models);
    INSERT INTO prompts_text (rowid, positive, workflow, models) VALUES (new.id, new.positive, new.workflow, new.models);
END;
PRAGMA user_version = {_SCHEMA_VERSION};
"""

# A final status is never replaced by a live one: a late "running" update must not revive a finished prompt.
_UPSERT = f"""
INSERT INTO prompts ({", ".join(_COLUMNS)}, seen_at) VALUES ({", ".join("?" * len(_COLUMNS))}, ?)
ON CONFLICT (server, prompt_id) DO UPDATE SET
    status = CASE WHEN prompts.status IN ({", ".join(repr(s) for s in sorted(FINAL_STATUSES))})
                   AND excluded.status NOT IN ({", ".join(repr(s) for s in sorted(FINAL_STATUSES))})
                  THEN prompts.status ELSE excluded.status END,
    workflow = COALESCE(excluded.workflow, prompts.workflow),
    queued_at = COALESCE(prompts.queued_at, excluded.queued_at),
    started_at = COALESCE(excluded.started_at, prompts.started_at),
    finished_at = COALESCE(excluded.finished_at, prompts.finished_at),
    outputs = CASE WHEN excluded.outputs != '[]' THEN excluded.outputs ELSE prompts.outputs END,
    error = COALESCE(excluded.error, prompts.error),
    seed = COALESCE(excluded.seed, prompts.seed),
    positive = COALESCE(excluded.positive, prompts.positive),
    models = CASE WHEN excluded.models != '[]' THEN excluded.models ELSE prompts.models END,
    prompt = CASE WHEN excluded.prompt != '{{}}' THEN excluded.prompt ELSE prompts.prompt END,
    seen_at = excluded.seen_at
"""


def _fts_query(text: str) -> str:
    """The user's words as an FTS5 query: every word must appear (as a prefix), quotes made harmless."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"*' for w in words if w)


class Journal:
    """The journal file; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 keep_days: float | None = DEFAULT_KEEP_DAYS) -> None:
        if max_entries < 1:
            raise JournalError(f"the journal must keep at least one prompt, not {max_entries}")
        self.path = path
        self.max_entries = max_entries
        self.keep_days = keep_days
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open the prompt journal {path} ({exc}); move the file aside to start "
                               "a new one") from None
        except OSError as exc:
            raise JournalError(f"cannot create the prompt journal in {path.parent} ({exc.strerror or exc})") from None
        self._writes = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write the prompt journal {self.path} ({exc})") from None

    def record(self, entries: Iterable[JournalEntry], *, now: float | None = None) -> int:
        """Add or update entries (matched by server and prompt id); returns how many were written."""
        seen = time.time() if now is None else now
        rows = [(e.server, e.prompt_id, e.status, e.workflow, e.queued_at, e.started_at, e.finished_at,
                 json.dumps(list(e.outputs)), e.error, e.seed, e.positive, json.dumps(list(e.models)),
                 json.dumps(e.prompt, allow_nan=False, default=str) if e.prompt else "{}", seen)
                for e in entries]
        if not rows:
            return 0
        with self._transaction() as db:
            db.executemany(_UPSERT, rows)
        self._writes += len(rows)
        if self._writes >= 1000:
            self.prune(now=seen)
        return len(rows)

    def prune(self, *, now: float | None = None) -> int:
        """Drop what the bounds no longer keep; returns how many entries went."""
        self._writes = 0
        with self._transaction() as db:
            removed = 0
            if self.keep_days is not None:
                cutoff = (time.time() if now is None else now) - self.keep_days * 86400
                removed += db.execute("DELETE FROM prompts WHERE seen_at < ?", (cutoff,)).rowcount
            extra = db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] - self.max_entries
            if extra > 0:
                removed += db.execute("DELETE FROM prompts WHERE id IN (SELECT id FROM prompts ORDER BY seen_at, id "
                                      "LIMIT ?)", (extra,)).rowcount
        return removed

    def count(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0])
            except sqlite3.Error as exc:
                raise JournalError(f"cannot read the prompt journal ({exc})") from None

    def get(self, server: str, prompt_id: str) -> JournalEntry | None:
        found = self._select("WHERE p.server = ? AND p.prompt_id = ?", [server, prompt_id], 1, with_prompt=True)
        return found[0] if found else None

    def prompt_of(self, entry: JournalEntry) -> dict[str, Any]:
        """The API prompt a search left out (empty when the journal never had it)."""
        if entry.prompt or not entry.prompt_kept:
            return entry.prompt
        kept = self.get(entry.server, entry.prompt_id)
        return kept.prompt if kept is not None else {}

    def search(self, text: str | None = None, *, server: str | None = None, seed: int | None = None,
               status: str | None = None, since: float | None = None, until: float | None = None,
               limit: int = 50) -> list[JournalEntry]:
        """Newest first, without the API prompts (``prompt_of`` reads one). ``text`` matches the prompt text, the workflow name and model/LoRA names
        (every word, as a prefix); the other filters are exact; times are epoch seconds."""
        where: list[str] = []
        args: list[Any] = []
        if text and _fts_query(text):
            where.append("p.id IN (SELECT rowid FROM prompts_text WHERE prompts_text MATCH ?)")
            args.append(_fts_query(text))
        for column, value in (("p.server", server), ("p.seed", seed), ("p.status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("COALESCE(p.queued_at, p.seen_at) >= ?")
            args.append(since)
        if until is not None:
            where.append("COALESCE(p.queued_at, p.seen_at) < ?")
            args.append(until)
        # A common word matches most of the journal: walking the newest first and stopping at ``limit``
        # beats sorting every match (SQLite's own choice, ten times slower over 100k prompts).
        newest_first = "INDEXED BY prompts_seen" if text and _fts_query(text) else ""
        return self._select(("WHERE " + " AND ".join(where)) if where else "", args, limit, newest_first)

    def _select(self, where: str, args: list[Any], limit: int, index: str = "", *,
                with_prompt: bool = False) -> list[JournalEntry]:
        # The newest ids are picked first and only their rows read whole: sorting every match with its
        # API prompt attached made a common word over 100k prompts cost a tenth of a second. A page of
        # results leaves the prompts out: decoding 200 of them was half of a search's time.
        columns = [f"p.{c}" for c in _COLUMNS]
        if not with_prompt:
            columns[_COLUMNS.index("prompt")] = "p.prompt != '{}'"
        sql = (f"SELECT {', '.join(columns)} FROM prompts p JOIN "
               f"(SELECT p.id, p.seen_at FROM prompts p {index} {where} ORDER BY p.seen_at DESC, p.id DESC LIMIT ?) top "
               "ON p.id = top.id ORDER BY top.seen_at DESC, top.id DESC")
        with self._lock:
            try:
                rows = self._db.execute(sql, [*args, max(1, limit)]).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"cannot search the prompt journal ({exc})") from None
        return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    """A row of ``_select``: its ``prompt`` column is the API prompt's JSON, or whether there is one."""
    values = dict(zip(_COLUMNS, row))
    kept = values["prompt"]
    return JournalEntry(
        server=values["server"], prompt_id=values["prompt_id"], status=values["status"],
        prompt=json.loads(kept or "{}") if isinstance(kept, str) else {},
        prompt_kept=not isinstance(kept, str) and bool(kept),
        workflow=values["workflow"],
        queued_at=values["queued_at"], started_at=values["started_at"], finished_at=values["finished_at"],
        outputs=tuple(json.loads(values["outputs"] or "[]")), error=values["error"], seed=values["seed"],
        positive=values["positive"], models=tuple(json.loads(values["models"] or "[]")),
    )


def _output_name(output: OutputFile) -> str:
    name = f"{output.subfolder}/{output.filename}" if output.subfolder else output.filename
    return name if output.type == "output" else f"{output.type}:{name}"


def from_history(server: str, entry: HistoryEntry, workflow: str | None = None) -> JournalEntry:
    """A journal entry from the server's history (which carries the prompt itself)."""
    error = None
    if entry.error is not None:
        error = str(entry.error.get("exception_message") or entry.error.get("exception_type") or entry.outcome)
    return JournalEntry(server=server, prompt_id=entry.prompt_id, status=entry.outcome, prompt=entry.prompt,
                        workflow=workflow, started_at=entry.started_at, finished_at=entry.finished_at,
                        outputs=tuple(_output_name(o) for o in entry.outputs), error=error)


def from_state(server: str, state: PromptState, *, prompt: dict[str, Any] | None = None,
               workflow: str | None = None, queued_at: float | None = None) -> JournalEntry:
    """A journal entry from what the session follows live (``prompt`` when this app queued it)."""
    error = None
    if state.error is not None:
        error = state.error.exception_message or state.error.exception_type
    status = "lost" if state.lost else state.status
    return JournalEntry(server=server, prompt_id=state.prompt_id, status=status, prompt=prompt or {},
                        workflow=workflow, queued_at=queued_at, started_at=state.started_at,
                        finished_at=state.finished_at, outputs=tuple(_output_name(o) for o in state.outputs),
                        error=error)
