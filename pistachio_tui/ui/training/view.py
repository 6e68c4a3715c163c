"""The Training view: watch a DiffusionPipe run, pick its epoch, promote it into ComfyUI.

A ``training.watch.RunWatcher`` polls the run (in a thread) and the view draws
each ``RunState``: progress, the loss and eval-loss curves, an epoch table with
the checkpoints present, the convergence epoch with its one-line reason, and the
console log through a ``LogIndex`` (only the lines on screen are read).
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
from pistachio_tui.training.converge import Convergence, find_convergence
from pistachio_tui.training.errors import PromoteRefused, TrainingError
from pistachio_tui.training.logindex import LogIndex
from pistachio_tui.training.prepare import launch_command
from pistachio_tui.training.promote import lora_name, promote
from pistachio_tui.training.runs import RUN_NAME
from pistachio_tui.training.watch import RunState, RunWatcher
from pistachio_tui.ui.dialogs import TextModal, YesNo
from pistachio_tui.ui.format import esc
from pistachio_tui.ui.widgets.loglines import LogLines
from pistachio_tui.ui.widgets.status_line import StatusLine

COMMANDS: list[tuple[str, str, str]] = [
    ("Training: open run folder", "Watch a DiffusionPipe run, output folder or log file", "open_run"),
    ("Training: promote epoch", "Copy the selected epoch's LoRA into ComfyUI's models/loras", "promote"),
    ("Training: show config", "Show the run's DiffusionPipe TOML", "show_config"),
    ("Training: copy launch command", "Copy the deepspeed command that resumes this run", "copy_launch"),
    ("Training: search log", "Find text in the run's console log", "search"),
    ("Training: log / curves", "Switch between the loss curves and the console log", "toggle_log"),
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
    style = {"complete": "green", "failed": "bold red", "quit": "yellow"}.get(state.status, "cyan")
    line.append(state.name, style="bold")
    line.append(f"  {state.status}", style=style)
    if state.epoch is not None:
        line.append(f"  epoch {state.epoch}" + (f"/{state.total_epochs}" if state.total_epochs else ""))
    if state.step is not None:
        line.append(f"  step {state.step}" + (f"/{state.total_steps}" if state.total_steps else ""))
    if state.it_per_s:
        line.append(f"  {state.it_per_s:.2f} it/s", style="dim")
    if state.eta_s:
        minutes, seconds = divmod(int(state.eta_s), 60)
        line.append(f"  ETA {minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"  ETA {minutes}m {seconds:02d}s")
    if state.loss_ema is not None:
        line.append(f"  loss {state.loss_ema:.4f}", style="dim")
    if state.errors:
        last = state.errors[-1]
        line.append(f"\n{last.kind}: {last.suggestion or last.text}", style="bold red")
    return line


class TrainingView(Vertical):
    """Runs list, curves, epoch table with convergence, log pane; promote and launch actions.

    ``run`` opens a run (or output folder, or log) at start. ``gpu`` is the
    training preset GPU key used for the resume command (it decides NCCL flags).
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
    ]

    def __init__(self, settings: Settings, *, run: Path | None = None, poll_interval: float = 2.0,
                 gpu: str = "h200", name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self._initial = run
        self.poll_interval = poll_interval
        self.gpu = gpu
        self.watcher: RunWatcher | None = None
        self.state: RunState | None = None
        self.convergence: Convergence | None = None
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
                epochs = DataTable(id="train-epochs", cursor_type="row")
                epochs.add_columns("Epoch", "Eval loss", "Saved")
                yield epochs
            with TabbedContent(id="train-tabs", initial="train-curves"):
                with TabPane("Curves", id="train-curves"):
                    yield PlotextPlot(id="train-plot")
                with TabPane("Log", id="train-logpane"):
                    yield LogLines(id="train-log")
                    yield Input(placeholder="Search the log — Enter finds, n next, N previous",
                                id="train-search", compact=True)
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
        return (state.status, state.step, state.epoch, state.loss_series.last_step, len(state.errors),
                sum(len(v) for v in state.evals.values()), tuple(state.saved_epochs))

    def _show(self, state: RunState) -> None:
        signature = self._signature(state)
        if state is self.state and signature == self._drawn:
            return
        self.state, self._drawn = state, signature
        self.convergence = find_convergence(state.eval_loss_by_epoch(), saved_epochs=state.saved_epochs)
        self.query_one("#train-summary", Static).update(summary_line(state))
        converge = Text("★ ", style="bold yellow")
        converge.append(self.convergence.explanation)
        self.query_one("#train-converge", Static).update(converge)
        self._draw_epochs(state)
        self._draw_plot(state)

    def _draw_epochs(self, state: RunState) -> None:
        evals = state.eval_loss_by_epoch()
        checkpoints = state.checkpoints
        epochs = sorted((set(evals) | set(state.saved_epochs)) - {0})
        best = self.convergence.best_epoch if self.convergence else None
        rows = []
        for epoch in epochs:
            saved = checkpoints.epoch(epoch) if checkpoints else None
            mark = "—" if saved is None else ("yes" if saved.ok else f"broken: {saved.problem}")
            rows.append((epoch, evals.get(epoch), mark, epoch == best))
        if tuple(rows) == self._epoch_rows:
            return
        first = not self._epoch_rows
        self._epoch_rows = tuple(rows)
        table = self.query_one("#train-epochs", DataTable)
        selected = self.selected_epoch()
        table.clear()
        for epoch, loss, mark, is_best in rows:
            style = "bold yellow" if is_best else ""
            table.add_row(Text(f"{'★' if is_best else ' '}{epoch}", style=style),
                          Text("—" if loss is None else f"{loss:.4f}", style=style),
                          Text(mark, style="green" if mark == "yes" else "red" if mark != "—" else "dim"),
                          key=str(epoch))
        keep = best if first or selected is None else selected
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)))

    def _draw_plot(self, state: RunState) -> None:
        widget = self.query_one("#train-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        points = state.loss_series.points
        if points:
            plt.plot([s for s, _ in points], [v for _, v in points], label="loss", marker="braille")
        name = state.eval_name
        evals = list(state.evals.get(name, ())) if name else []
        if evals:
            plt.plot([s for s, _ in evals], [v for _, v in evals], label="eval", marker="dot")
        best = self.convergence.best_epoch if self.convergence else None
        end = state.epoch_end_steps.get(best) if best is not None else None
        if end is None and best is not None and state.steps_per_epoch:
            end = best * state.steps_per_epoch
        if end is not None:
            plt.vline(end, "yellow")
        plt.xlabel("step")
        widget.refresh()

    # -- selection and actions -----------------------------------------------------

    def selected_epoch(self) -> int | None:
        """The epoch under the cursor of the epoch table, else the suggested one."""
        table = self.query_one("#train-epochs", DataTable)
        if table.row_count:
            return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return self.convergence.best_epoch if self.convergence else None

    def action_promote(self) -> None:
        epoch = self.selected_epoch()
        run_dir = self.watcher.paths.run_dir if self.watcher else None
        comfy = self.settings.comfy_dir
        if run_dir is None or epoch is None:
            self.status.show("Open a run with saved epochs first", "warning")
            return
        if comfy is None:
            self.status.show("No local ComfyUI folder: set comfy_dir in the settings file", "error")
            return
        target = comfy / "models" / "loras" / lora_name(run_dir.name, epoch)
        if not target.exists():
            self._promote(run_dir, epoch, comfy, False)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._promote(run_dir, epoch, comfy, True)
            else:
                self.status.show(f"Not promoted: {target.name} is already there", "warning")

        self.app.push_screen(YesNo(esc(f"Replace {target.name}?"),
                                   esc(f"{target} already exists. Replace it with epoch {epoch} of {run_dir.name}?")),
                             answer)

    @work(group="train-promote", exit_on_error=False)
    async def _promote(self, run_dir: Path, epoch: int, comfy: Path, overwrite: bool) -> None:
        self.status.show(f"Copying epoch {epoch} into ComfyUI…")
        try:
            done = await asyncio.to_thread(promote, run_dir, epoch, comfy, overwrite=overwrite)
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
        command = launch_command(self.watcher.config.path, self.gpu, resume=self.watcher.paths.run_dir.name)
        self.app.copy_to_clipboard(command)
        self.status.show(f"Copied: {command}", "ok")

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
