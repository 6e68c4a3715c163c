"""Workflows screen: browse sources, preview needs, edit common parameters, queue."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, Tree

from pistachio_tui.comfy.errors import ComfyError, PromptRejected
from pistachio_tui.comfy.session import ServerSession, SessionUpdate
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.dialogs import AskScreen
from pistachio_tui.ui.format import esc, plain
from pistachio_tui.ui.queue.rows import WORKFLOW_KEY
from pistachio_tui.ui.state import OpenWorkflow
from pistachio_tui.ui.widgets.choice import ChoiceInput
from pistachio_tui.ui.workflows.preview import Preview, build_preview, preview_markup
from pistachio_tui.ui.workflows.sources import (
    ServerWorkflow,
    bundled_dir,
    fetch_server_workflow,
    server_workflows,
    templates_dir,
    workflow_files,
)
from pistachio_tui.workflow.edit import apply_seed_mode
from pistachio_tui.workflow.load import WorkflowError, load_workflow
from pistachio_tui.workflow.seeds import SEED_MODES

#: Short labels: the queue bar shares a line with the batch size and the button at 60 columns.
MAX_BATCH = 100


class WorkflowsScreen(PistachioScreen):
    """Tree of workflow sources on the left, preview and queue form on the right."""

    MODE = "workflows"
    CSS_PATH = "screen.tcss"
    SUMMARY = "Browse, inspect, edit and queue workflows"
    BINDINGS = [
        Binding("o", "open_path", "Open path"),
        Binding("g", "queue_prompt", "Queue"),
        Binding("f", "fix", "Fix"),
        Binding("b", "focus_batch", "Batch"),
        Binding("r", "reload_sources", "Reload"),
        Binding("a", "add_folder", "Add folder"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.preview: Preview | None = None

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="open a workflow file by path (o) — .json, .png, .webp", id="open-path")
        with Horizontal(id="wf-body"):
            yield Tree("Workflows", id="wf-tree")
            with VerticalScroll(id="wf-side"):
                with Horizontal(id="wf-queue-bar"):
                    yield Label("Batch", id="batch-label")
                    yield Input("1", id="batch", type="integer", tooltip="How many prompts to queue")
                    yield Select([(mode, mode) for mode in SEED_MODES], value="random", allow_blank=False, id="seed-mode",
                                 tooltip="How each queued prompt's seed is chosen")
                    yield Button("Queue", variant="primary", id="queue-button")
                yield Static("Pick a workflow on the left.", id="wf-summary")
                yield Vertical(id="wf-params")

    def on_resize(self) -> None:
        # At 60 columns the word would push the Queue button off the line.
        self.query_one("#batch-label", Label).update("Batch" if self.size.width >= 72 else "×")

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.show_root = False
        self._fill_tree()
        tree.focus()

    def _fill_tree(self) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        self._add_files(tree.root.add("Bundled", expand=True), workflow_files(bundled_dir()))
        mine = tree.root.add("My folders", expand=True)
        for folder in self.papp.settings.workflow_dirs:
            self._add_files(mine.add(plain(folder)), workflow_files(Path(folder).expanduser()))
        if not self.papp.settings.workflow_dirs:
            mine.add_leaf("(press a to add a folder)")
        self._server_node = tree.root.add("On server")
        templates = tree.root.add("Official templates")
        self._add_files(templates, workflow_files(templates_dir()))
        self.load_server_workflows()

    @staticmethod
    def _add_files(node, files: list[Path]) -> None:
        for path in files:
            node.add_leaf(plain(path.stem), data=path)

    def action_reload_sources(self) -> None:
        self._fill_tree()

    @work(exclusive=True, group="server-workflows")
    async def load_server_workflows(self) -> None:
        session = self.session
        items = await server_workflows(session) if session else []
        node = self._server_node
        node.remove_children()
        for item in items:
            node.add_leaf(plain(item.name), data=item)
        node.set_label(f"On server ({len(items)})")

    def refresh_view(self, update: SessionUpdate | None) -> None:
        if update is None:
            self.load_server_workflows()

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        data = event.node.data
        if isinstance(data, (Path, ServerWorkflow)):
            self.open_workflow(data)

    def action_open_path(self) -> None:
        self.query_one("#open-path", Input).focus()

    def action_focus_batch(self) -> None:
        self.query_one("#batch", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "open-path":
            self._next_field(event.input)
            return
        if event.value.strip():
            self.open_workflow(Path(event.value.strip()).expanduser())
        # Back to the tree, so the screen's single-key bindings work again.
        self.query_one(Tree).focus()

    def _next_field(self, field: Input) -> None:
        """Enter in the queue form: on to the next field; the last one queues."""
        fields = [self.query_one("#batch", Input), *self.query(".param").results(Input)]
        index = fields.index(field) if field in fields else len(fields) - 1
        if index + 1 < len(fields):
            fields[index + 1].focus()
        else:
            self.action_queue_prompt()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "queue-button":
            self.action_queue_prompt()

    @work(exclusive=True, group="preview")
    async def open_workflow(self, source: Path | ServerWorkflow) -> None:
        """Load, convert and analyse a workflow, then show it (slow parts off the UI thread)."""
        summary = self.query_one("#wf-summary", Static)
        summary.update("Loading…")
        session = self.session
        try:
            if isinstance(source, ServerWorkflow):
                if session is None:
                    return
                data = await fetch_server_workflow(session, source)
                workflow = await asyncio.to_thread(load_workflow, data, Path(source.name).stem)
            else:
                workflow = await asyncio.to_thread(load_workflow, source)
            object_info = await self._object_info(session)
            preview = await asyncio.to_thread(build_preview, workflow, object_info)
        except (WorkflowError, ComfyError) as exc:
            summary.update(f"[red]{esc(getattr(exc, 'message', exc))}[/]")
            return
        self.preview = preview
        summary.update(preview_markup(preview, session.name if session else None))
        await self._show_params(preview)
        self.papp.open_workflow = OpenWorkflow.as_saved(preview)

    @on(Input.Changed, ".param")
    def _param_typed(self) -> None:
        if self.preview is not None:
            values = tuple(self.query_one(f"#param-{i}", Input).value for i in range(len(self.preview.params)))
            self.papp.open_workflow = OpenWorkflow(self.preview, values)

    @staticmethod
    async def _object_info(session: ServerSession | None) -> dict | None:
        if session is None or session.state == "down":
            return None
        try:
            return await session.client.object_info()
        except ComfyError:
            return None

    async def _show_params(self, preview: Preview) -> None:
        box = self.query_one("#wf-params", Vertical)
        await box.remove_children()
        widgets: list[Widget] = []
        for index, param in enumerate(preview.params):
            role = f" ({param.role})" if param.role else ""
            label = f"{param.title} · {param.name}{role}"
            widgets.append(Label(plain(label), classes="param-label"))
            choices = preview.choices.get(index)
            if choices is None:
                widgets.append(Input(str(param.value), id=f"param-{index}", classes="param"))
            else:
                widgets.append(ChoiceInput(str(param.value), choices, title=label, upload=index in preview.uploads,
                                           id=f"param-{index}", classes="param"))
        await box.mount_all(widgets)

    # -- input images and workflow folders ------------------------------------

    def on_choice_input_upload_wanted(self, message: ChoiceInput.UploadWanted) -> None:
        session = self.require_session()
        if session is not None:
            def chosen(path: str | None) -> None:
                if path:
                    self._upload(session, message.field, path)

            self.app.push_screen(AskScreen("Upload which image? (a file on this computer)", str(Path.home()) + "/"),
                                 chosen)

    @work(group="upload")
    async def _upload(self, session: ServerSession, field: ChoiceInput, path: str) -> None:
        """Send a local image to the server's input folder (POST /upload/image) and pick it."""
        source = Path(path).expanduser()
        try:
            data = await asyncio.to_thread(source.read_bytes)
            answer = await session.client.upload_image(data, source.name)
        except OSError as exc:
            self.notify(f"Cannot read {source}: {exc.strerror or exc}", severity="error")
            return
        except ComfyError as exc:
            self.notify(exc.message, severity="error")
            return
        name = str(answer.get("name") or source.name)
        subfolder = str(answer.get("subfolder") or "")
        field.value = f"{subfolder}/{name}" if subfolder else name
        field.choices.append(field.value)
        self.notify(f"Uploaded {source.name} to {session.name} as {field.value}")

    def action_add_folder(self) -> None:
        self.app.push_screen(AskScreen("Add a folder of workflows (.json, .png, .webp):", str(Path.home()) + "/"),
                             self._add_folder)

    def _add_folder(self, path: str | None) -> None:
        if not path:
            return
        folder = Path(path).expanduser()
        if not folder.is_dir():
            self.notify(f"{folder} is not a folder", severity="error")
            return
        if folder in self.papp.settings.workflow_dirs:
            self.notify(f"{folder} is already listed")
            return
        self.papp.settings.workflow_dirs.append(folder)
        if self.papp.save():
            self.notify(f"Added {folder}: {len(workflow_files(folder))} workflow(s)")
        self._fill_tree()

    def action_fix(self) -> None:
        session = self.require_session()
        if session is None or self.preview is None:
            if self.preview is None:
                self.notify("Open a workflow first.", severity="warning")
            return
        self.papp.open_fix(session, self.preview.workflow)

    def action_queue_prompt(self) -> None:
        session = self.require_session()
        if session is None:
            return
        opened = self.papp.open_workflow
        if opened is None or not opened.converted:
            self.notify("Open a workflow first (and connect a server for UI-format files).", severity="warning")
            return
        try:
            batch = max(1, min(MAX_BATCH, int(self.query_one("#batch", Input).value or 1)))
            prompt = opened.prompt()
        except (ValueError, WorkflowError) as exc:
            self.notify(str(exc), severity="error")
            return
        mode = str(self.query_one("#seed-mode", Select).value)
        self.submit_batch(session, prompt, batch, mode)

    @work(group="submit")
    async def submit_batch(self, session: ServerSession, prompt: dict, batch: int, mode: str) -> None:
        workflow = self.preview.workflow if self.preview else None
        extra: dict = {WORKFLOW_KEY: workflow.name} if workflow else {}
        if workflow and workflow.ui:
            extra["extra_pnginfo"] = {"workflow": workflow.ui}
        queued = []
        for _ in range(batch):
            one = copy.deepcopy(prompt)
            try:
                apply_seed_mode(one, mode)  # type: ignore[arg-type]
            except WorkflowError:
                pass  # a workflow without a seed runs as is
            try:
                queued.append(await session.submit(one, extra or None))
            except PromptRejected as exc:
                self._show_rejection(exc)
                return
            except ComfyError as exc:
                self.notify(exc.message, severity="error")
                return
            prompt = one if mode == "increment" else prompt
        self.notify(f"Queued {len(queued)} prompt(s) on {session.name} — see Queue (3)")

    def _show_rejection(self, exc: PromptRejected) -> None:
        lines = esc("\n".join(exc.report.describe()))
        self.query_one("#wf-summary", Static).update(f"[b red]The server refused the prompt[/]\n{lines}")
        self.notify("The server refused the prompt — details in the preview pane.", severity="error")
