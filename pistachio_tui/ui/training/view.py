"""The Training view: watch a DiffusionPipe run, pick its checkpoint, promote it into ComfyUI.

A ``training.watch.RunWatcher`` polls the run (in a thread) and the view draws
each ``RunState``: progress, the loss and eval-loss curves, a table of the saves
(``epochN/``, ``stepN/``) with the eval at each one's step, the suggested save
with its one-line reason, and the console log through a ``LogIndex`` (only the
lines on screen are read).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from pistachio_tui.config import Settings
from pistachio_tui.format import duration
from pistachio_tui.remedies import needs_of
from pistachio_tui.training.converge import Convergence
from pistachio_tui.training.dataset import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from pistachio_tui.training.errors import PromoteRefused, TrainingError
from pistachio_tui.training.launch import LaunchProblem, plan_launch, plan_resume, start
from pistachio_tui.training.logindex import LogIndex
from pistachio_tui.training.prepare import launch_command
from pistachio_tui.training.presets import GPUS, detect_gpu
from pistachio_tui.training.promote import find_trigger, lora_name, promote, run_title, training_folder
from pistachio_tui.training.runs import RUN_NAME, read_main_toml
from pistachio_tui.training.tournament import TournamentResult, pick_contenders, run_tournament, tournament_prompts
from pistachio_tui.training.watch import RunState, RunWatcher
from pistachio_tui.ui.dialogs import TextModal, YesNo
from pistachio_tui.ui.format import esc
from pistachio_tui.ui.remedies import SET_COMFY_DIR, ui_remedy
from pistachio_tui.ui.training.captions import CaptionsScreen
from pistachio_tui.ui.widgets.loglines import LogLines
from pistachio_tui.ui.widgets.output_preview import OutputPreview
from pistachio_tui.ui.widgets.status_line import StatusLine

COMMANDS: list[tuple[str, str, str]] = [
    ("Training: open run folder", "Watch a DiffusionPipe run, output folder or log file", "open_run"),
    ("Training: promote checkpoint", "Copy the selected save's LoRA into ComfyUI's models/loras", "promote"),
    ("Training: show config", "Show the run's DiffusionPipe TOML", "show_config"),
    ("Training: copy launch command", "Copy the deepspeed command that resumes this run", "copy_launch"),
    ("Training: search log", "Find text in the run's console log", "search"),
    ("Training: log / curves", "Switch between the loss curves and the console log", "toggle_log"),
    ("Training: start or resume", "Start the opened prepare folder's run, or resume the opened run, detached "
     "(survives logging out), with this machine's GPU preset", "launch"),
    ("Training: review captions", "Every image of the opened dataset folder (or the run's training set) with "
     "its caption; edit in place", "captions"),
    ("Training: tournament", "Render the saves around the eval minimum side by side on the servers", "tournament"),
]


def runs_under(folder: Path) -> list[Path]:
    """DiffusionPipe run folders (named by start time) directly inside ``folder``, newest last."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name))
    except OSError:
        return []


def summary_line(state: RunState) -> Text:
    """Status, epoch and step, speed, ETA and smoothed loss on one line."""
    line = Text()
    style = {"complete": "green", "failed": "bold red", "stopped": "bold red", "quit": "yellow"}.get(state.status, "cyan")
    line.append(state.name, style="bold")
    line.append(f"  {state.status}", style=style)
    if state.epoch is not None:
        line.append(f"  epoch {state.epoch}" + (f"/{state.total_epochs}" if state.total_epochs else ""))
    if state.step is not None:
        line.append(f"  step {state.step}" + (f"/{state.total_steps}" if state.total_steps else ""))
    if state.it_per_s:
        line.append(f"  {state.it_per_s:.2f} it/s", style="dim")
    if state.eta_s:
        line.append(f"  ETA {duration(state.eta_s)}")
    if state.loss_ema is not None:
        line.append(f"  loss {state.loss_ema:.4f}", style="dim")
    if state.status == "caching" and state.step is None:
        line.append(f"  caching {state.caching}; the run folder appears after caching", style="dim")
    if state.ended_reason:
        line.append(f"\n{state.ended_reason}", style="dim")
    if state.watch_error:
        line.append(f"\n{state.watch_error}", style="bold red")
    if state.errors:
        last = state.errors[-1]
        line.append(f"\n{last.kind}: {last.suggestion or last.text}", style="bold red")
    return line


class TrainingView(Vertical):
    """Runs list, curves, epoch table with convergence, log pane; promote and launch actions.

    ``run`` opens a run (or output folder, or log) at start. ``gpu`` is the
    training preset GPU key used for the resume command (it decides NCCL flags);
    None means this machine's GPU as NVML reports it.
    """

    DEFAULT_CSS = ""

    BINDINGS = [
        Binding("o", "open_run", "Open run"),
        Binding("p", "promote", "Promote"),
        Binding("l", "toggle_log", "Log/Curves"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match"),
        Binding("N", "next_match(True)", "Previous match", show=False),
        Binding("f", "show_config", "Config"),
        Binding("y", "copy_launch", "Copy command"),
        Binding("t", "tournament", "Tournament"),
        Binding("R", "launch", "Start/Resume"),
        Binding("c", "captions", "Captions"),
    ]

    def __init__(self, settings: Settings, *, run: Path | None = None, poll_interval: float = 2.0,
                 gpu: str | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self._initial = run
        self.poll_interval = poll_interval
        self.gpu = gpu
        self.watcher: RunWatcher | None = None
        self.state: RunState | None = None
        self.convergence: Convergence | None = None
        self.tournament: TournamentResult | None = None
        self._epoch_rows: tuple = ()
        self._search: str = ""
        self._drawn: tuple = ()

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Run folder, output folder or log file — Enter opens it", id="train-path",
                    compact=True)
        yield Static("No run open — press o and give a run folder", id="train-summary")
        yield Static("", id="train-converge")
        with Horizontal(id="train-body"):
            with Vertical(id="train-side"):
                yield OptionList(id="train-runs")
                epochs: DataTable = DataTable(id="train-epochs", cursor_type="row")
                epochs.add_columns("Save", "Eval loss", "Usable")
                yield epochs
            with TabbedContent(id="train-tabs", initial="train-curves"):
                with TabPane("Curves", id="train-curves"):
                    yield PlotextPlot(id="train-plot")
                with TabPane("Log", id="train-logpane"):
                    yield LogLines(id="train-log")
                    yield Input(placeholder="Search the log — Enter finds, n next, N previous",
                                id="train-search", compact=True)
                with TabPane("Tournament", id="train-tourpane"):
                    yield Input(placeholder="Workflow with a LoRA loader — Enter renders every save around the "
                                "best on the configured servers", id="train-tour-wf", compact=True)
                    yield OutputPreview(id="train-tour-sheet")
        yield StatusLine("", id="train-status")

    def on_mount(self) -> None:
        self.query_one("#train-runs").display = False
        self.query_one("#train-search").display = False
        if self._initial is not None:
            self.query_one("#train-path", Input).value = str(self._initial)
            self.open_path(self._initial)
            self.call_after_refresh(self.query_one("#train-epochs", DataTable).focus)

    @property
    def status(self) -> StatusLine:
        return self.query_one("#train-status", StatusLine)

    # -- opening -----------------------------------------------------------------

    def action_open_run(self) -> None:
        self.query_one("#train-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "train-path":
            if event.value.strip():
                self.open_path(Path(event.value.strip()).expanduser())
        elif event.input.id == "train-tour-wf":
            if event.value.strip():
                self._tournament(Path(event.value.strip()).expanduser())
        elif event.input.id == "train-search":
            self._search = event.value
            event.input.display = False
            self.query_one("#train-log", LogLines).focus()
            self._find(event.value, backwards=False)

    def open_path(self, path: Path) -> None:
        """Open a run folder or log file; an output folder lists its runs and opens the newest."""
        runs = runs_under(path) if path.is_dir() else []
        options = self.query_one("#train-runs", OptionList)
        options.clear_options()
        options.display = len(runs) > 1
        if runs:
            options.add_options([Option(Text(run.name), id=str(run)) for run in runs])
            options.highlighted = len(runs) - 1
        self._watch(runs[-1] if runs else path)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self._watch(Path(event.option.id))

    @work(exclusive=True, group="train-watch", exit_on_error=False)
    async def _watch(self, target: Path) -> None:
        try:
            watcher = await asyncio.to_thread(RunWatcher, target)
        except TrainingError as exc:
            self.status.show(exc.message, "error")
            return
        except OSError as exc:
            self.status.show(f"Cannot read {target}: {exc.strerror}", "error")
            return
        self.watcher, self.state, self._epoch_rows, self._drawn = watcher, None, (), ()
        log_path = watcher.paths.log_path
        self.query_one("#train-log", LogLines).open(LogIndex(log_path) if log_path else None)
        self.status.show(f"Watching {watcher.paths.run_dir or log_path}")
        if isinstance(self.app.focused, Input) and self.app.focused.id == "train-path":
            self.query_one("#train-epochs", DataTable).focus()
        async for state in watcher.watch(self.poll_interval):
            self._show(state)

    # -- drawing -----------------------------------------------------------------

    @staticmethod
    def _signature(state: RunState) -> tuple:
        """What changes when there is something new to draw (the state is updated in place)."""
        return (state.status, state.step, state.epoch, state.loss_series.last_step, len(state.errors), state.watch_error,
                sum(len(v) for v in state.evals.values()),
                tuple((s.name, s.size) for s in state.checkpoints.saved) if state.checkpoints else ())

    def _show(self, state: RunState) -> None:
        signature = self._signature(state)
        if state is self.state and signature == self._drawn:
            return
        self.state, self._drawn = state, signature
        self.convergence = state.convergence()
        self.query_one("#train-summary", Static).update(summary_line(state))
        converge = Text("★ ", style="bold yellow")
        converge.append(self.convergence.explanation)
        self.query_one("#train-converge", Static).update(converge)
        self._draw_epochs(state)
        self._draw_plot(state)

    def _draw_epochs(self, state: RunState) -> None:
        best = self.convergence.best if self.convergence else None
        rows = []
        for c in state.candidates():
            mark = "yes" if c.ok else f"broken: {c.saved.problem}"
            rows.append((c.name, c.eval_loss, mark, c.name == best))
        if tuple(rows) == self._epoch_rows:
            return
        first = not self._epoch_rows
        self._epoch_rows = tuple(rows)
        table = self.query_one("#train-epochs", DataTable)
        selected = self.selected_checkpoint()
        table.clear()
        for name, loss, mark, is_best in rows:
            style = "bold yellow" if is_best else ""
            table.add_row(Text(f"{'★' if is_best else ' '}{name}", style=style),
                          Text("—" if loss is None else f"{loss:.4f}", style=style),
                          Text(mark, style="green" if mark == "yes" else "red"),
                          key=name)
        keep = best if first or selected is None else selected
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))

    def _draw_plot(self, state: RunState) -> None:
        widget = self.query_one("#train-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        points = state.loss_series.points
        if points:
            plt.plot([s for s, _ in points], [v for _, v in points], label="loss", marker="braille")
        name = state.eval_name
        evals = sorted(state.eval_loss_by_step(name).items()) if name else []
        if evals:
            plt.plot([s for s, _ in evals], [v for _, v in evals], label="eval", marker="dot")
        end = self.convergence.best_step if self.convergence else None
        if end is not None:
            plt.vline(end, "yellow")
        plt.xlabel("step")
        widget.refresh()

    # -- selection and actions -----------------------------------------------------

    def selected_checkpoint(self) -> str | None:
        """The save under the cursor of the table, else the suggested one."""
        table = self.query_one("#train-epochs", DataTable)
        if table.row_count:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return self.convergence.best if self.convergence else None

    def action_promote(self) -> None:
        checkpoint = self.selected_checkpoint()
        run_dir = self.watcher.paths.run_dir if self.watcher else None
        comfy = self.settings.comfy_dir
        if run_dir is None or checkpoint is None:
            self.status.show("Open a run with saved checkpoints first", "warning")
            return
        if comfy is None:
            self.status.show(f"No local ComfyUI folder to promote into: set it ({SET_COMFY_DIR})", "error")
            return
        target = comfy / "models" / "loras" / lora_name(run_title(run_dir), checkpoint, find_trigger(run_dir))
        if not target.exists():
            self._promote(run_dir, checkpoint, comfy, False)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._promote(run_dir, checkpoint, comfy, True)
            else:
                self.status.show(f"Not promoted: {target.name} is already there", "warning")

        self.app.push_screen(YesNo(esc(f"Replace {target.name}?"),
                                   esc(f"{target} already exists. Replace it with {checkpoint} of {run_dir.name}?")),
                             answer)

    @work(group="train-promote", exit_on_error=False)
    async def _promote(self, run_dir: Path, checkpoint: str, comfy: Path, overwrite: bool) -> None:
        self.status.show(f"Copying {checkpoint} into ComfyUI…")
        try:
            done = await asyncio.to_thread(promote, run_dir, checkpoint, comfy, overwrite=overwrite)
        except (PromoteRefused, TrainingError) as exc:
            self.status.show(exc.message, "error")
            return
        trigger = f" — trigger word: {done.trigger}" if done.trigger else ""
        verb = "Replaced" if done.replaced else "Promoted"
        self.status.show(f"{verb} {done.path.name} ({done.size:,} bytes, verified){trigger}", "ok")

    def action_show_config(self) -> None:
        path = self.watcher.config.path if self.watcher else None
        if path is None:
            self.status.show("This run has no DiffusionPipe TOML in its folder", "warning")
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            self.status.show(f"Cannot read {path}: {exc.strerror}", "error")
            return
        self.app.push_screen(TextModal(esc(path.name), text))

    def action_copy_launch(self) -> None:
        if self.watcher is None or self.watcher.config.path is None or self.watcher.paths.run_dir is None:
            self.status.show("Open a run with its DiffusionPipe TOML first", "warning")
            return
        card, count = (GPUS[self.gpu], 1) if self.gpu else (detect_gpu() or (GPUS["h100"], 1))
        command = launch_command(self.watcher.config.path, card, num_gpus=count,
                                 resume=self.watcher.paths.run_dir.name)
        self.app.copy_to_clipboard(command)
        self.status.show(f"Copied: {command}", "ok")

    def _launch_plan(self):
        """Resume the open run if it has a resume state, else start the opened folder's main TOML."""
        gpu = (GPUS[self.gpu], 1) if self.gpu else detect_gpu()
        card, count = gpu if gpu else (None, 1)
        run_dir = self.watcher.paths.run_dir if self.watcher else None
        if run_dir is not None and (run_dir / "latest").is_file():
            return plan_resume(run_dir, gpu=card, num_gpus=count, diffusion_pipe=self.settings.diffusion_pipe_dir)
        folder = Path(self.query_one("#train-path", Input).value.strip() or ".").expanduser()
        configs = [c for c in sorted(folder.glob("*.toml")) if read_main_toml(c) is not None] if folder.is_dir() else []
        if not configs:
            raise LaunchProblem("open a prepare folder (with its main TOML) to start, or a run with a resume "
                                "state (global_stepN) to resume")
        return plan_launch(configs[0], gpu=card, num_gpus=count, diffusion_pipe=self.settings.diffusion_pipe_dir)

    def action_launch(self) -> None:
        try:
            plan = self._launch_plan()
        except TrainingError as exc:
            need = needs_of(exc)
            self.status.show(exc.message + (f" — {ui_remedy(need, self.settings.path)}" if need else ""), "error")
            return
        verb = "Resume" if plan.run_dir else "Start"

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                pid = start(plan, mode="detach")
            except TrainingError as exc:
                self.status.show(exc.message, "error")
                return
            self.status.show(f"{verb}ed in the background (pid {pid}); console: {plan.log_path}", "ok")
            self.open_path(plan.run_dir or plan.config.parent)

        self.app.push_screen(YesNo(f"{verb} training?", esc(f"{plan.shell_command}\n\nconsole → {plan.log_path}")),
                             answer)

    def action_captions(self) -> None:
        """The typed folder when it holds images, else the open run's training set."""
        typed = Path(self.query_one("#train-path", Input).value.strip() or ".").expanduser()
        run_dir = self.watcher.paths.run_dir if self.watcher else None
        trigger = find_trigger(run_dir) if run_dir else None
        folder = typed if typed.is_dir() and any(
            p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES for p in typed.iterdir()) else None
        if folder is None and run_dir is not None:
            folder = training_folder(run_dir)
        if folder is None:
            self.status.show("Type a dataset folder in the path bar, or open a run whose dataset TOML names one",
                             "warning")
            return
        self.app.push_screen(CaptionsScreen(folder, trigger))

    def action_tournament(self) -> None:
        self.query_one("#train-tabs", TabbedContent).active = "train-tourpane"
        self.query_one("#train-tour-wf", Input).focus()

    @work(exclusive=True, group="train-tournament", exit_on_error=False)
    async def _tournament(self, workflow: Path) -> None:
        run_dir = self.watcher.paths.run_dir if self.watcher else None
        comfy, servers = self.settings.comfy_dir, self.settings.servers
        if run_dir is None or self.state is None:
            self.status.show("Open a run with saves first", "warning")
            return
        if comfy is None or not servers:
            self.status.show(f"A tournament needs a server and the servers' ComfyUI folder ({SET_COMFY_DIR})",
                             "error")
            return
        try:
            contenders = pick_contenders(self.state)
            prompts = tournament_prompts(find_trigger(run_dir))
            self.status.show(f"Rendering {len(prompts)} prompts × {', '.join(contenders)}…")
            result = await run_tournament(run_dir, contenders, prompts, workflow=workflow, servers=servers,
                                          loras_dir=comfy / "models" / "loras", out_dir=run_dir / "tournament",
                                          on_progress=lambda text: self.status.show(text))
        except Exception as exc:  # noqa: BLE001 — fleet and training setup errors both carry a message
            self.status.show(getattr(exc, "message", None) or str(exc), "error")
            return
        if result.sheet is None:
            self.status.show("No images came back: " + "; ".join(result.failed.values()), "error")
            return
        self.query_one("#train-tour-sheet", OutputPreview).show(result.sheet.name, result.sheet.read_bytes())
        self.tournament = result
        self.status.show(f"Saves down, prompts across: {', '.join(contenders)}. Select one in the table and "
                         "press p to promote it", "ok")

    def action_toggle_log(self) -> None:
        tabs = self.query_one("#train-tabs", TabbedContent)
        tabs.active = "train-logpane" if tabs.active == "train-curves" else "train-curves"
        if tabs.active == "train-logpane":
            self.query_one("#train-log", LogLines).focus()

    def action_search(self) -> None:
        self.query_one("#train-tabs", TabbedContent).active = "train-logpane"
        search = self.query_one("#train-search", Input)
        search.display = True
        search.focus()

    def action_next_match(self, backwards: bool = False) -> None:
        if not self._search:
            self.action_search()
            return
        self._find(self._search, backwards=backwards)

    @work(exclusive=True, group="train-search", exit_on_error=False)
    async def _find(self, pattern: str, *, backwards: bool) -> None:
        log = self.query_one("#train-log", LogLines)
        if log.index is None or not pattern:
            return
        index = log.index
        start = log.mark if log.mark is not None else (log.first_shown if backwards else log.first_shown - 1)
        line = await asyncio.to_thread(index.find, pattern, start, backwards=backwards)
        wrapped = line is None
        if wrapped:
            # Like a pager: past the last match, go round from the other end.
            start = index.line_count if backwards else -1
            line = await asyncio.to_thread(index.find, pattern, start, backwards=backwards)
        if line is None:
            self.status.show(f"No match for {pattern!r}", "warning")
            return
        log.show_line(line)
        self.status.show(f"{pattern!r} at line {line + 1}" + (" (search wrapped)" if wrapped else ""))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.status.show(f"Unexpected error: {type(error).__name__}: {error}", "error")
