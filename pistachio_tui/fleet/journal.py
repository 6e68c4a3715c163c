"""The batch journal (what finished) and the manifest (what the user gets).

The journal is append-only JSON lines, flushed and fsynced per record, so a
Ctrl-C or a crash loses at most the job that was being written; a resumed batch
skips every job whose record and files are there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_NAME = ".pistachio-batch.jsonl"
MANIFEST_NAME = "manifest.json"


@dataclass
class JobRecord:
    """A finished job as the manifest lists it."""

    job: str
    index: int
    params: dict[str, Any]
    target: str
    duration_s: float
    files: list[str] = field(default_factory=list)
    attempts: int = 1


class Journal:
    """Append-only record of finished jobs in the batch's output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / JOURNAL_NAME
        self.done: dict[str, JobRecord] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                # A torn last line from a crash mid-write: that job simply reruns.
                continue
            if entry.get("event") == "done":
                record = JobRecord(**entry["record"])
                if all((self.out_dir / name).exists() for name in record.files):
                    self.done[record.job] = record

    def record_done(self, record: JobRecord) -> None:
        self.done[record.job] = record
        self._append({"event": "done", "record": asdict(record)})

    def record_failure(self, job_id: str, target: str, error: str, attempt: int) -> None:
        self._append({"event": "failed", "job": job_id, "target": target, "error": error, "attempt": attempt})

    def _append(self, entry: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def write_manifest(out_dir: Path, records: list[JobRecord], extra: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically: jobs in batch order with their files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST_NAME
    body = {**extra, "jobs": [asdict(r) for r in sorted(records, key=lambda r: r.index)]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def write_output(out_dir: Path, name: str, data: bytes) -> None:
    """Write one output file so that it appears under its name only when whole."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.part"
    tmp.write_bytes(data)
    tmp.replace(out_dir / name)
