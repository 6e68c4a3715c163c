"""The batch journal (what finished), the manifest (what the user gets) and the folder lock.

The journal is append-only JSON lines, flushed and fsynced per record, so a
Ctrl-C or a crash loses at most the job that was being written; a resumed batch
skips every job whose record and files are there. Its first line names the
workflow the batch runs (a digest of the API prompt), so a folder is never
resumed with a workflow that changed since: the old images would be paired
with the new workflow.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.safefiles import atomic_write, open_own_regular

JOURNAL_NAME = ".pistachio-batch.jsonl"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".pistachio-batch.lock"


class BatchFolderError(Exception):
    """The output folder cannot take this batch; the message says what to do."""


class BatchFolderBusy(BatchFolderError):
    """Another run holds the folder's lock."""


class WorkflowChanged(BatchFolderError):
    """The folder's journal belongs to another version of the workflow."""


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
        #: Digest of the workflow the folder's batch runs, if its journal names one.
        self.workflow: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                if entry.get("event") == "batch":
                    self.workflow = self.workflow or str(entry["workflow"])
                elif entry.get("event") == "done":
                    record = JobRecord(**entry["record"])
                    if all(_is_output(self.out_dir, name) for name in record.files):
                        self.done[record.job] = record
            except (ValueError, TypeError, KeyError, AttributeError):
                # A torn last line from a crash mid-write, or a hand-edited line: that job simply reruns.
                continue

    def claim(self, workflow: str) -> None:
        """Tie the folder to ``workflow`` (a digest); refuse a folder holding another workflow's batch."""
        if self.workflow is None:
            if not self.done:
                self._append({"event": "batch", "workflow": workflow})
                self.workflow = workflow
            return
        if self.workflow != workflow:
            raise WorkflowChanged(
                f"{self.out_dir} holds a batch of another version of this workflow (it changed since, "
                "or it is another workflow): give a new output folder with -o, or delete that folder "
                "to start over.")

    def record_done(self, record: JobRecord) -> None:
        # Done only once it is on disk: a record that cannot be written is a job that reruns.
        self._append({"event": "done", "record": asdict(record)})
        self.done[record.job] = record

    def record_failure(self, job_id: str, target: str, error: str, attempt: int) -> None:
        self._append({"event": "failed", "job": job_id, "target": target, "error": error, "attempt": attempt})

    def _append(self, entry: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fd = open_own_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _is_output(out_dir: Path, name: str) -> bool:
    """A journalled file still there, as a file in the folder (not a path elsewhere)."""
    return isinstance(name, str) and "/" not in name and name not in ("", ".", "..") \
        and (out_dir / name).is_file()


class BatchLock:
    """An exclusive lock on a batch folder for the length of a run.

    ``flock`` on a file in the folder: the kernel drops it when the process
    ends, however it ends, so a crashed run never leaves the folder locked. The
    file says who holds it, for the message the second run shows.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> BatchLock:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise BatchFolderError(f"{self.out_dir} is a file, not a folder: give another output folder with -o.")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            fd = open_own_regular(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise BatchFolderError(f"Cannot use {self.out_dir} as the batch folder: "
                                   f"{exc.strerror or exc}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", errors="replace").strip() or "another run"
            os.close(fd)
            raise BatchFolderBusy(f"{self.out_dir} is in use by another batch run ({holder}); wait for "
                                  "it to end, or stop it, before running this batch there.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_manifest(out_dir: Path, records: list[JobRecord], extra: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically: jobs in batch order with their files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST_NAME
    body = {**extra, "jobs": [asdict(r) for r in sorted(records, key=lambda r: r.index)]}
    atomic_write(path, json.dumps(body, indent=2, sort_keys=True).encode("utf-8"))
    return path


def write_output(out_dir: Path, name: str, data: bytes) -> None:
    """Write one output file so that it appears under its name only when whole."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / name, data)
