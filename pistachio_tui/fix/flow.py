"""The fix flow: from a downloaded workflow to one the server accepts.

A UI-free state machine. It diagnoses (what the workflow needs, merged with
the server's own validation verdict), installs missing node packs one at a
time through ComfyUI-Manager (whichever version the server runs), restarts the
server and waits for it, then deals with the missing model files: a file the
server already has under another name is used by rewriting the workflow (the
corrected copy is saved), the others are downloaded straight into the local
ComfyUI folder (once it is checked to be one the server reads) or queued on the
Manager; then it validates again. Every step is reported as a
:class:`FixEvent`, which the TUI Fix screen and the CLI both render. What it
decided (packs tried, model sources chosen) is kept in a small JSON file so an
interrupted run resumes with the same choices and the same partial downloads.

Use from a UI (in a worker)::

    flow = FixFlow(client, workflow, FixOptions(comfy_dir=..., state_dir=state_dir()),
                   emit=post_event_to_screen, chooser=ask_user_for_a_model_source)
    outcome = await flow.run()   # outcome.accepted, .remaining, .commands

``chooser`` may return None to skip a model; without a chooser, ``yes=True``
takes the best exact file-name match and ``yes=False`` only proposes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError, PromptRejected
from pistachio_tui.fix.downloads import DownloadError, DownloadProgress, download, is_hf_url, safe_target
from pistachio_tui.fix.importfail import (
    ImportFailure,
    ServerPaths,
    log_text,
    manual_install_commands,
    parse_import_failures,
    server_paths,
)
from pistachio_tui.fix.manager import ManagerClient, ManagerError, ManagerForbidden, TaskEvent, install_specs
from pistachio_tui.fix.models_search import (
    FOLDER_MANAGER_TYPES,
    ModelCandidate,
    best_exact,
    find_candidates,
    hub_unreachable,
)
from pistachio_tui.fix.nodedb import CORE_ID, NodeDB, NodeDBError, NodePack
from pistachio_tui.fix.ondisk import OnDisk, elsewhere, fixed_path, match_on_server, rename_model, save_workflow
from pistachio_tui.fix.restart import restart_server
from pistachio_tui.fix.server_folders import comfy_dir_problem, model_folders
from pistachio_tui.format import transfer
from pistachio_tui.redact import HIDDEN, scrub_data, scrub_mapping, scrub_urls
from pistachio_tui.remedies import Need
from pistachio_tui.safefiles import atomic_write
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import (
    LOADER_FOLDERS,
    ModelNeed,
    PackRef,
    analyse,
    canonical_folder,
    looks_like_model_file,
)
from pistachio_tui.workflow.load import Workflow
from pistachio_tui.workflow.node_widgets import combo_values, ordered_inputs

#: Seconds between two download progress events (the UI redraws on each).
PROGRESS_EVERY = 0.5
#: Diagnose-and-fix rounds before giving up.
MAX_ROUNDS = 3


@dataclass(frozen=True)
class FixEvent:
    """One step of the flow, for display.

    ``step``: diagnose, nodes, install, restart, models, download, validate, done.
    ``state``: start, progress, ok, failed, waiting, info, choose.
    """

    step: str
    item: str | None
    state: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    """What stands between the workflow and a run, grouped nodes → models → other inputs."""

    missing_nodes: list[str]
    missing_models: list[ModelNeed]
    other: list[str]
    #: Set when the server accepted (and so queued) the prompt during validation.
    prompt_id: str | None = None

    @property
    def clean(self) -> bool:
        return not (self.missing_nodes or self.missing_models or self.other)

    def lines(self) -> list[str]:
        """One readable line per problem, in the order they get fixed."""
        out = [f"missing node: {n}" for n in self.missing_nodes]
        out += [f"missing model: {m.folder or '?'}/{m.name}" for m in self.missing_models]
        return out + [f"other: {o}" for o in self.other]


@dataclass
class FixOptions:
    """How the flow may act."""

    #: The local ComfyUI folder; models are downloaded into its ``models/`` when given.
    comfy_dir: Path | None = None
    #: Take the best exact candidate without asking.
    yes: bool = False
    #: Queue the prompt once nothing is missing (the only way to get the server's final verdict).
    queue: bool = True
    hf_search: bool = True
    #: Kept out of the repr: a logged or printed FixOptions must not show the token.
    hf_token: str | None = field(default=None, repr=False)
    restart_timeout: float = 600.0
    task_timeout: float = 1800.0
    poll_interval: float = 1.0
    state_dir: Path | None = None
    #: Where the corrected workflow is saved when a model name was rewritten
    #: (default: ``<stem>.fixed.json`` beside the original).
    output: Path | None = None


@dataclass
class FixOutcome:
    """How the run ended, with what is left for a person to do."""

    accepted: bool
    prompt_id: str | None
    diagnosis: Diagnosis | None
    #: Shell commands for what could not be done automatically.
    commands: list[str] = field(default_factory=list)
    #: One actionable sentence per remaining problem.
    remaining: list[str] = field(default_factory=list)
    import_failures: list[ImportFailure] = field(default_factory=list)
    #: The corrected workflow, when model names were rewritten to the server's.
    saved: Path | None = None
    #: Workflow value → the server's name for the same file.
    renamed: dict[str, str] = field(default_factory=dict)
    #: What the person could give so a run does more (each front end says how: a flag, a setting).
    needs: list[Need] = field(default_factory=list)

    def need(self, need: Need | None) -> None:
        if need is not None and need not in self.needs:
            self.needs.append(need)


Chooser = Callable[[ModelNeed, list[ModelCandidate]], Awaitable[ModelCandidate | None]]


class FixState:
    """Choices of earlier runs for one (server, workflow), kept as JSON."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"packs": {}, "models": {}}
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.data.update(loaded)
            except (OSError, ValueError):
                pass

    @classmethod
    def for_run(cls, folder: Path | None, server: str, workflow: Workflow) -> FixState:
        if folder is None:
            return cls(None)
        key = hashlib.sha256(f"{server}\n{workflow.source or workflow.name}".encode()).hexdigest()[:16]
        return cls(folder / "fix" / f"{key}.json")

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Private and scrubbed: the choices name model URLs, which may carry credentials.
        atomic_write(self.path, json.dumps(scrub_data(self.data), indent=1).encode("utf-8"), mode=0o600)

    def chosen(self, need: ModelNeed) -> ModelCandidate | None:
        entry = self.data["models"].get(need.name)
        if not isinstance(entry, dict) or HIDDEN in str(entry.get("url", "")):
            # A URL whose credentials were scrubbed is found again from the workflow or the lists.
            return None
        return ModelCandidate(**entry)

    def choose(self, need: ModelNeed, candidate: ModelCandidate) -> None:
        self.data["models"][need.name] = asdict(candidate)
        self.save()


class FixFlow:
    """Drives one workflow to green on one server. Call :meth:`run`."""

    def __init__(self, client: ComfyClient, workflow: Workflow, options: FixOptions | None = None, *,
                 emit: Callable[[FixEvent], None] | None = None, chooser: Chooser | None = None,
                 manager: ManagerClient | None = None) -> None:
        self.client = client
        self.workflow = workflow
        self.options = options or FixOptions()
        self._emit = emit or (lambda _e: None)
        self.chooser = chooser
        self.manager = manager
        self._manager_checked = manager is not None
        self.state = FixState.for_run(self.options.state_dir, client.base_url, workflow)
        self._paths: ServerPaths | None = None
        self._folders: dict[str, list[str]] | None = None
        self._folders_read = False
        self._hub_down: str | None = None
        self._listings: dict[str, list[str]] | None = None
        #: Why no node map could be read at all (then "no pack known" would be a lie).
        self._lookup_error: str | None = None
        #: Node class → the pack its nodes say they come from, from the last diagnosis.
        self._pack_refs: dict[str, PackRef] = {}
        self.outcome = FixOutcome(False, None, None)

    def emit(self, step: str, item: str | None, state: str, message: str, **data: Any) -> None:
        # Every transcript, JSON line and screen shows these: no URL credentials in them.
        self._emit(FixEvent(step, item, state, scrub_urls(message), scrub_mapping(data)))

    # ------------------------------------------------------------ diagnosis

    async def _server_models(self, needs_folders: set[str]) -> dict[str, list[str]]:
        known = set(await self.client.models())
        folders = sorted(f for f in needs_folders if f in known)
        listings = await asyncio.gather(*(self.client.models(f) for f in folders))
        return dict(zip(folders, listings))

    def _prompt(self, object_info: dict[str, Any]) -> dict[str, Any]:
        if self.workflow.ui is None and self.workflow.api is not None:
            return self.workflow.api
        return to_api(self.workflow, object_info).prompt

    async def diagnose(self, *, submit: bool = False) -> Diagnosis:
        """What is missing, from the workflow and, when ``submit``, from the server's
        verdict on ``POST /prompt``.

        A prompt the server accepts is queued: ComfyUI has no dry run. It accepts a
        prompt as soon as one output's branch validates and runs just that branch, so
        the verdict is only asked once our own reading finds nothing missing (else a
        workflow with one good branch would "pass" with its other models never fetched).
        """
        self.emit("diagnose", None, "start", "Checking what the workflow needs")
        object_info = await self.client.object_info(refresh=True)
        first = analyse(self.workflow, object_info, None)
        folders = {canonical_folder(m.folder) for m in first.models if m.folder}
        needs = analyse(self.workflow, object_info, await self._server_models({f for f in folders if f}))
        self._pack_refs = needs.packs
        diagnosis = Diagnosis(list(needs.missing_nodes), [m for m in needs.models if m.present is False], [])
        if submit and diagnosis.clean:
            await self._merge_verdict(diagnosis, object_info)
        state = "ok" if diagnosis.clean else "failed"
        summary = "nothing missing" if diagnosis.clean else f"{len(diagnosis.lines())} problem(s)"
        self.emit("diagnose", None, state, summary, problems=diagnosis.lines())
        return diagnosis

    async def _merge_verdict(self, diagnosis: Diagnosis, object_info: dict[str, Any]) -> None:
        try:
            result = await self.client.submit(self._prompt(object_info), {"client_id": self.client.client_id})
        except PromptRejected as exc:
            report = exc.report
        else:
            diagnosis.prompt_id = result.prompt_id
            diagnosis.missing_nodes.clear()
            diagnosis.missing_models.clear()
            return
        for class_type in report.missing_node_types():
            if class_type not in diagnosis.missing_nodes:
                diagnosis.missing_nodes.append(class_type)
        known = {(m.node_id, m.input_name) for m in diagnosis.missing_models}
        for node in report.node_errors:
            for error in node.errors:
                if error.type == "value_not_in_list" and self._is_model_input(node.class_type, error):
                    if (node.node_id, error.input_name) not in known:
                        folder = LOADER_FOLDERS.get((node.class_type, error.input_name or ""))
                        diagnosis.missing_models.append(ModelNeed(
                            str(error.received_value), folder, node.node_id, error.input_name, None, False, False))
                else:
                    diagnosis.other.append(error.describe())
        # With node classes missing, the server's top-level complaint is about them
        # (an unknown or class-less node), not a separate problem.
        if not report.node_errors and not report.missing_node_types() and not diagnosis.missing_nodes:
            diagnosis.other.extend(report.describe())

    async def validate(self) -> Diagnosis:
        """Submit the prompt: the server's verdict is the only final one (and queues it if accepted)."""
        self.emit("validate", None, "start", "Submitting the prompt")
        diagnosis = Diagnosis([], [], [])
        await self._merge_verdict(diagnosis, await self.client.object_info())
        if diagnosis.prompt_id is None:
            self.emit("validate", None, "failed", "The server refused the prompt", problems=diagnosis.lines())
        return diagnosis

    @staticmethod
    def _is_model_input(class_type: str, error: Any) -> bool:
        return (class_type, error.input_name or "") in LOADER_FOLDERS or looks_like_model_file(error.received_value)

    # ------------------------------------------------------------ nodes

    async def _detect_manager(self) -> ManagerClient | None:
        if not self._manager_checked:
            self._manager_checked = True
            candidate = ManagerClient(self.client)
            try:
                dialect = await candidate.detect()
            except ComfyError:
                dialect = None
            self.manager = candidate if dialect else None
            self.emit("nodes", None, "info", f"{dialect.label} found" if dialect else
                      "No ComfyUI-Manager on this server (neither /v2/manager/version nor /manager/version answer)")
        return self.manager

    async def _server_paths(self) -> ServerPaths:
        if self._paths is None:
            try:
                self._paths = server_paths(log_text(await self.client.logs()))
            except ComfyError:
                self._paths = ServerPaths()
        return self._paths

    async def _node_db(self, manager: ManagerClient | None) -> tuple[NodeDB | None, NodeDB | None]:
        # Building a map reads and indexes megabytes of the Manager's JSON: that runs
        # in a thread, so the UI sharing this event loop keeps drawing meanwhile.
        live = None
        if manager is not None:
            try:
                live = await asyncio.to_thread(NodeDB.from_mappings, await manager.mappings("cache"))
            except (ComfyError, NodeDBError) as exc:
                self.emit("nodes", None, "info", f"The Manager's node map is unavailable ({exc}); using the offline one")
        try:
            offline = await asyncio.to_thread(NodeDB.from_manager_package)
        except NodeDBError as exc:
            offline = None
            if live is None:
                self._lookup_error = str(exc)
                self.emit("nodes", None, "failed", self._lookup_error)
        return live, offline

    async def resolve_packs(self, classes: list[str]) -> tuple[dict[str, list[str]], dict[str, NodePack], list[str]]:
        """Group missing classes by the pack that provides them: (pack url → classes,
        url → pack, classes nobody provides)."""
        manager = await self._detect_manager()
        live, offline = await self._node_db(manager)
        by_pack: dict[str, list[str]] = {}
        packs: dict[str, NodePack] = {}
        unknown = []
        for class_type in classes:
            ref = self._pack_refs.get(class_type)
            if ref is not None and ref.cnr_id == CORE_ID:
                unknown.append(class_type)
                self.emit("nodes", class_type, "failed",
                          f"{class_type} is a ComfyUI node (saved with ComfyUI {ref.ver or '?'}): update ComfyUI")
                continue
            if ref is not None:
                pack = (live or offline or NodeDB({})).pack_for_identity(ref)
                packs[pack.url] = pack
                by_pack.setdefault(pack.url, []).append(class_type)
                pinned = f"@{ref.ver}" if ref.ver else ""
                self.emit("nodes", class_type, "ok",
                          f"{class_type} → {pack.title} <{pack.url}> (the node names {pack.registry_id or pack.url}"
                          f"{pinned})")
                continue
            matches = (live.packs_for(class_type) if live else []) or (offline.packs_for(class_type) if offline else [])
            if not matches:
                unknown.append(class_type)
                said = "Cannot look up" if self._lookup_error else "No known node pack provides"
                self.emit("nodes", class_type, "failed", f"{said} {class_type}")
                continue
            pack = matches[0].pack
            others = len(matches) - 1
            packs[pack.url] = pack
            by_pack.setdefault(pack.url, []).append(class_type)
            note = f" ({others} other pack(s) also match)" if others else ""
            self.emit("nodes", class_type, "ok", f"{class_type} → {pack.title} <{pack.url}>{note}")
        return by_pack, packs, unknown

    async def install_packs(self, packs: list[NodePack]) -> list[NodePack]:
        """Install packs one at a time through the Manager; returns those installed.
        Packs it cannot install get manual commands in the outcome."""
        manager = await self._detect_manager()
        installed = []
        for pack in packs:
            if manager is not None and await self._install_one(manager, pack):
                installed.append(pack)
                continue
            commands = manual_install_commands(pack, await self._server_paths())
            self.outcome.commands.extend(commands)
            self.outcome.remaining.append(
                f"Install {pack.title} by hand ({pack.url}), then restart ComfyUI: see the commands.")
            self.emit("install", pack.title, "failed", "Install it by hand", commands=commands)
        return installed

    async def _install_one(self, manager: ManagerClient, pack: NodePack) -> bool:
        def on_task(event: TaskEvent) -> None:
            if event.state == "started":
                self.emit("install", pack.title, "progress", "installing…")

        for spec in install_specs(pack):
            self.emit("install", pack.title, "start", f"Queueing {spec.shown}")
            try:
                ui_id = await manager.queue_install(spec)
                result = (await manager.run([ui_id], timeout=self.options.task_timeout,
                                            poll_interval=self.options.poll_interval, on_event=on_task))[ui_id]
            except ManagerForbidden as exc:
                self.emit("install", pack.title, "failed", exc.message)
                return False
            except ManagerError as exc:
                self.emit("install", pack.title, "failed", exc.message)
                continue
            self.state.data["packs"][pack.url] = {"spec": spec.params(), "result": result.result}
            self.state.save()
            if result.ok is not False:
                self.emit("install", pack.title, "ok", f"installed {spec.shown}" if result.ok else "queue finished")
                return True
            self.emit("install", pack.title, "failed", await manager.explain(result))
            if result.result == "failed":
                return False  # the security policy refused it: another spelling would be refused too
        return False

    async def restart_and_wait(self, expect_classes: list[str]) -> bool:
        """Reboot through the Manager and wait until the server answers again, with a timer.
        A refused restart is reported at once (False), with nothing to wait for."""
        manager = await self._detect_manager()
        if manager is None:
            return False
        self.emit("restart", None, "start", "Restarting ComfyUI to load the new nodes")

        def waiting(elapsed: float) -> None:
            self.emit("restart", None, "waiting", f"waiting for the server… {elapsed:.0f} s", elapsed=elapsed)

        try:
            took = await restart_server(self.client, manager, timeout=self.options.restart_timeout,
                                        poll_interval=self.options.poll_interval, expect_classes=expect_classes,
                                        on_wait=waiting)
        except ManagerError as exc:
            self.emit("restart", None, "failed", exc.message)
            self.outcome.remaining.append(f"Restart ComfyUI by hand to load the new nodes: {exc.message}")
            return False
        self._paths = None
        self.emit("restart", None, "ok", f"Server is back after {took:.0f} s", elapsed=took)
        return True

    async def fix_nodes(self, classes: list[str]) -> None:
        """Resolve, install, restart, re-check; leftovers go to the outcome."""
        by_pack, packs, unknown = await self.resolve_packs(classes)
        for class_type in unknown:
            self.outcome.remaining.append(self._unknown_reason(class_type))
        installed = await self.install_packs([packs[url] for url in by_pack])
        if not installed:
            return
        expected = [c for p in installed for c in by_pack[p.url]]
        if not await self.restart_and_wait(expected):
            return
        info = await self.client.object_info(refresh=True)
        still = [c for c in expected if c not in info]
        if still:
            await self._report_import_failures(installed, still)

    def _unknown_reason(self, class_type: str) -> str:
        ref = self._pack_refs.get(class_type)
        if ref is not None and ref.cnr_id == CORE_ID:
            return (f"Node {class_type!r} is part of ComfyUI itself (the workflow was saved with ComfyUI "
                    f"{ref.ver or 'a newer version'}): update ComfyUI on the server.")
        if self._lookup_error:
            return f"Cannot look up which pack provides node {class_type!r}: {self._lookup_error}"
        return (f"No known pack provides node {class_type!r}: search its name on GitHub or the Comfy registry; "
                "the pack may have been renamed, or the workflow needs a newer ComfyUI.")

    async def _report_import_failures(self, installed: list[NodePack], missing: list[str]) -> None:
        try:
            text = log_text(await self.client.logs())
        except ComfyError:
            text = ""
        failures = parse_import_failures(text)
        names = {p.repo_name.lower() for p in installed}
        relevant = [f for f in failures if f.pack.lower() in names] or failures
        for failure in relevant:
            self.outcome.import_failures.append(failure)
            self.outcome.commands.extend(failure.commands)
            self.outcome.remaining.append(
                f"{failure.pack} failed to import ({failure.message}); run the commands, then restart ComfyUI.")
            self.emit("nodes", failure.pack, "failed", f"import failed: {failure.message}",
                      commands=list(failure.commands))
        if not relevant:
            self.outcome.remaining.append(
                f"Still missing after the restart: {', '.join(missing)} — check the server log.")

    # ------------------------------------------------------------ models

    async def _choose(self, need: ModelNeed) -> ModelCandidate | None:
        remembered = self.state.chosen(need)
        if remembered is not None:
            self.emit("models", need.name, "info", f"using the source chosen earlier: {remembered.url}")
            return remembered
        hub = self.options.hf_search and await self._hub_reachable()
        candidates = await find_candidates(need, hf=hub, token=self.options.hf_token)
        self.emit("models", need.name, "choose", f"{len(candidates)} candidate(s)",
                  candidates=[asdict(c) for c in candidates[:5]])
        if self.chooser is not None:
            choice = await self.chooser(need, candidates)
        elif self.options.yes:
            choice = best_exact(need, candidates)
        else:
            choice = None
        if choice is not None:
            self.state.choose(need, choice)
        return choice

    async def _choices_for(self, need: ModelNeed) -> list[Any]:
        """What the server accepts for this need: the loader input's choices, else its folder's files."""
        object_info = await self.client.object_info()
        if need.node_id is not None and need.input_name is not None:
            node = self._prompt(object_info).get(need.node_id) or {}
            definition = object_info.get(str(node.get("class_type")))
            if isinstance(definition, dict):
                for name, spec in ordered_inputs(definition):
                    if name == need.input_name:
                        return combo_values(spec) or []
        folder = canonical_folder(need.folder)
        if folder and folder in await self.client.models():
            return await self.client.models(folder)
        return []

    async def _use_on_server(self, need: ModelNeed) -> bool:
        """Use a file the server has under another name: rewrite the workflow's value."""
        found: OnDisk | None = match_on_server(need.name, await self._choices_for(need))
        if found is None:
            if self._listings is None:
                self._listings = await self._server_models(set(await self.client.models()) - {"configs", "custom_nodes"})
            places = elsewhere(need.name, self._listings)
            if places:
                self.emit("models", need.name, "info",
                          f"the server has {', '.join(places[:3])}, but this loader does not read that folder")
            return False
        rename_model(self.workflow, need.name, found.server_name)
        self.outcome.renamed[need.name] = found.server_name
        where = f"{canonical_folder(need.folder)}/" if need.folder else ""
        others = f" ({found.alternatives} files have this name)" if found.alternatives > 1 else ""
        self.emit("models", need.name, "ok", f"using {where}{found.server_name} already on the server{others}",
                  server_name=found.server_name)
        return True

    def _save_corrected(self) -> None:
        fallback = self.options.state_dir / "fixed" if self.options.state_dir is not None else None
        target = self.options.output or fixed_path(self.workflow.source, self.workflow.name, fallback)
        try:
            self.outcome.saved = save_workflow(self.workflow, target)
        except OSError as exc:
            self.outcome.remaining.append(f"Could not save the corrected workflow to {target}: {exc}")
            self.emit("models", None, "failed", f"could not save {target}: {exc}")
            return
        self.emit("models", None, "ok", f"corrected workflow saved to {target}", path=str(target))

    async def _hub_reachable(self) -> bool:
        """Probe Hugging Face once per run; said once, in one message, when it is unreachable."""
        if self._hub_down is None:
            self._hub_down = await hub_unreachable() or ""
            if self._hub_down:
                # A notice, not the step's verdict: models found elsewhere still make it succeed,
                # and one that stays missing fails on its own row.
                self.emit("models", None, "info", self._hub_down)
                self.outcome.remaining.append(self._hub_down)
        return not self._hub_down

    async def fix_models(self, needs: list[ModelNeed]) -> None:
        """Use files already on the server, else find, choose and fetch each missing
        model; leftovers go to the outcome."""
        renamed = False
        for need in needs:
            if need.unsafe:
                self.outcome.remaining.append(
                    f"Refusing model path {need.name!r}: it would land outside the models folder.")
                self.emit("models", need.name, "failed", "unsafe path refused")
                continue
            if await self._use_on_server(need):
                renamed = True
                continue
            choice = await self._choose(need)
            folder = canonical_folder(need.folder) or (choice.folder if choice else None)
            if choice is None or folder is None:
                self._unknown_model(need, folder)
                continue
            await self._fetch(need, choice, folder)
        if renamed:
            self._save_corrected()

    def _unknown_model(self, need: ModelNeed, folder: str | None) -> None:
        where = f"models/{folder}/" if folder else "the matching models/<folder>/"
        if not self.options.yes:
            self.outcome.need(Need.MODEL_CHOICE)
        self.outcome.remaining.append(f"No source chosen for model {need.name!r}: download it into {where}.")
        self.emit("models", need.name, "failed", f"no source for {need.name}")

    async def _fetch(self, need: ModelNeed, choice: ModelCandidate, folder: str) -> None:
        relative = f"{folder}/{need.name.replace(chr(92), '/')}"
        if self.options.comfy_dir is not None:
            problem = await self._comfy_dir_problem(self.options.comfy_dir, folder)
            if problem is not None:
                self.outcome.need(Need.COMFY_DIR)
                self.outcome.remaining.append(problem)
                self.emit("download", need.name, "failed", problem)
                return
            await self._download_local(need, choice, self.options.comfy_dir, relative)
            return
        manager = await self._detect_manager()
        if manager is None:
            self.outcome.commands.append(f"curl -L -o {shlex.quote('models/' + relative)} {shlex.quote(choice.url)}")
            self.outcome.need(Need.COMFY_DIR)
            self.outcome.remaining.append(f"Download {need.name} into models/{folder}/ on the server (it has no "
                                          "Manager, and its ComfyUI folder is not known here).")
            self.emit("download", need.name, "failed", "no way to place the file on the server")
            return
        subdir = str(PurePosixPath(relative).parent)
        self.emit("download", need.name, "start", f"Manager downloads {choice.url} into models/{subdir}/")
        try:
            ui_id = await manager.queue_install_model(
                name=need.name, type=FOLDER_MANAGER_TYPES.get(folder, folder), url=choice.url,
                filename=PurePosixPath(relative).name, save_path=subdir)
            result = (await manager.run([ui_id], timeout=self.options.task_timeout,
                                        poll_interval=self.options.poll_interval))[ui_id]
        except ManagerError as exc:
            message: str | None = exc.message
            self.outcome.need(exc.needs)
        else:
            message = await manager.explain(result) if result.ok is False else None
        if message is not None:
            self.outcome.remaining.append(f"The Manager could not download {need.name}: {message}")
            self.emit("download", need.name, "failed", message)
        else:
            self.emit("download", need.name, "ok", f"models/{relative}")

    async def _comfy_dir_problem(self, comfy_dir: Path, folder: str) -> str | None:
        if not self._folders_read:
            self._folders_read = True
            self._folders = await model_folders(self.client)
            if self._folders is None:
                self.emit("download", None, "info", "The server does not list its model folders; cannot check "
                          f"that it reads {comfy_dir}/models")
        if self._folders is None:
            return None
        return comfy_dir_problem(comfy_dir, folder, self._folders, self.client.shown_url)

    async def _download_local(self, need: ModelNeed, choice: ModelCandidate, comfy_dir: Path,
                              relative: str) -> None:
        last = 0.0

        def progress(p: DownloadProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY or (p.total and p.done >= p.total):
                last = now
                self.emit("download", need.name, "progress", transfer(p.done, p.total, p.speed, p.eta),
                          done=p.done, total=p.total, speed=p.speed, eta=p.eta)

        try:
            target = safe_target(comfy_dir / "models", relative)
            self.emit("download", need.name, "start", f"{choice.url} → models/{relative}")
            token = self.options.hf_token if is_hf_url(choice.url) else None
            await download(choice.url, target, expected_size=choice.size, sha256=choice.sha256,
                           token=token, progress=progress)
        except DownloadError as exc:
            self.outcome.remaining.append(str(exc))
            self.emit("download", need.name, "failed", str(exc))
            return
        self.emit("download", need.name, "ok", f"saved models/{relative}")

    # ------------------------------------------------------------ run

    async def run(self) -> FixOutcome:
        """Diagnose, fix nodes, fix models, validate; never raises for a problem a
        person must solve — those end up in ``outcome.remaining``."""
        diagnosis = await self.diagnose()
        tried_nodes: set[str] = set()
        tried_models: set[str] = set()
        # Several rounds, because the server's verdict can reveal what the workflow
        # analysis missed; each problem is attempted once, so a round that tries
        # nothing new ends the run.
        for _ in range(MAX_ROUNDS):
            if diagnosis.prompt_id is not None:
                break
            progressed = False
            nodes = [n for n in diagnosis.missing_nodes if n not in tried_nodes]
            if nodes:
                tried_nodes.update(nodes)
                progressed = True
                self.emit("nodes", None, "start", f"{len(nodes)} missing node type(s)")
                await self.fix_nodes(nodes)
                diagnosis = await self.diagnose()
            models = [m for m in diagnosis.missing_models if m.name not in tried_models]
            if diagnosis.prompt_id is None and models:
                tried_models.update(m.name for m in models)
                progressed = True
                self.emit("models", None, "start", f"{len(models)} missing model(s)")
                await self.fix_models(models)
                diagnosis = await self.diagnose()
            if diagnosis.prompt_id is not None or not diagnosis.clean:
                if progressed:
                    continue
                break
            if not self.options.queue:
                break
            diagnosis = await self.validate()
            if not (diagnosis.missing_nodes or diagnosis.missing_models):
                break
        self.outcome.diagnosis = diagnosis
        self.outcome.prompt_id = diagnosis.prompt_id
        self.outcome.accepted = diagnosis.prompt_id is not None
        for line in diagnosis.other:
            self.outcome.remaining.append(f"Fix this input in the workflow: {line}")
        if self.outcome.accepted:
            self.emit("done", None, "ok", f"Accepted by the server (prompt {diagnosis.prompt_id})",
                      prompt_id=diagnosis.prompt_id)
        elif diagnosis.clean and not self.options.queue:
            self.emit("done", None, "ok", "Nothing missing any more; not submitted")
        else:
            self.emit("done", None, "failed", "Still not runnable", remaining=self.outcome.remaining)
        return self.outcome


