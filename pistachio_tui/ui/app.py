"""The Pistachio app shell: modes for each screen, sessions, themes, toasts."""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import platformdirs
from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer

from pistachio_tui.comfy.session import FINISHED, HEALTH, PROGRESS, ServerSession, SessionManager, SessionUpdate
from pistachio_tui.config import (
    ConfigError,
    ServerConfig,
    Settings,
    comfy_folder,
    data_dir,
    diffusion_pipe_folder,
    journal_path,
    save_settings,
)
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.format import duration, esc
from pistachio_tui.ui.messages import SessionChanged
from pistachio_tui.ui.themes import discover_themes
from pistachio_tui.ui.widgets.nav_bar import SCREENS

if TYPE_CHECKING:
    import httpx
    from textual.command import Provider

    from pistachio_tui.comfy.stream import Backoff
    from pistachio_tui.journal import Journal
    from pistachio_tui.journal_recorder import JournalRecorder
    from pistachio_tui.runpod.monitor import PodsMonitor
    from pistachio_tui.ui.state import OpenWorkflow
    from pistachio_tui.workflow.load import Workflow

S = TypeVar("S", bound=PistachioScreen)

#: A server can send thousands of progress events a second; more redraws than this only cost CPU
#: (and a busy loop never idles long enough for Textual to repaint at all).
PROGRESS_PER_SECOND = 20

#: The folder settings the app asks for: the question, the check of a typed path, the name in messages.
FOLDERS: dict[str, tuple[str, Callable[[str], Path], str]] = {
    "comfy_dir": ("The server's ComfyUI folder on this machine (models are downloaded into its models folder):",
                  comfy_folder, "ComfyUI folder"),
    "diffusion_pipe_dir": ("The diffusion-pipe checkout on this machine (the folder with train.py):",
                           diffusion_pipe_folder, "diffusion-pipe folder"),
}

#: How long a toast stays, by severity.
TOAST_SECONDS: dict[str, float] = {"information": 3.0, "warning": 6.0, "error": 10.0}

#: Work quitting would cut short, by worker group, and what the person is told before confirming
#: (lines short enough for the dialog at 80 columns).
LONG_WORK = {
    "batch-run": "A batch is running. Finished jobs stay recorded:\npick its output folder on Batch to resume.",
    "fix-run": "A fix is running: a download or install\nstops half-way (s on Fix resumes it).",
}

#: Where each mode's screen class lives. A screen's module (and what it needs: TensorBoard, numpy,
#: Pillow, plotext...) is imported, and the screen built, the first time the mode is shown: start-up
#: pays only for the first screen.
SCREEN_CLASSES = {
    "servers": "ServersScreen", "workflows": "WorkflowsScreen", "queue": "QueueScreen", "gpu": "GpuScreen",
    "fix": "FixScreen", "training": "TrainingScreen", "pods": "PodsScreen", "batch": "BatchScreen",
    "history": "HistoryScreen", "dashboard": "DashboardScreen",
}


def screen_class(mode: str) -> type[PistachioScreen]:
    """The main screen class of ``mode``, imported on first use."""
    module = importlib.import_module(f"pistachio_tui.ui.{mode}.screen")
    cls: type[PistachioScreen] = getattr(module, SCREEN_CLASSES[mode])
    return cls


def screen_styles(mode: str) -> list[Path]:
    """The stylesheets of ``mode``'s screen (its ``CSS_PATH``, relative to its module)."""
    cls = screen_class(mode)
    paths = cls.CSS_PATH if isinstance(cls.CSS_PATH, list) else [cls.CSS_PATH] if cls.CSS_PATH else []
    return [Path(inspect.getfile(cls)).parent / path for path in paths]


def _mode_factory(mode: str) -> Callable[[], PistachioScreen]:
    return lambda: screen_class(mode)()


def _commands() -> type[Provider]:
    """The palette's provider, imported when the palette first opens."""
    from pistachio_tui.ui.commands import PistachioCommands

    return PistachioCommands


class PistachioApp(App):
    """A keyboard-first workbench over every configured ComfyUI server."""

    TITLE = "Pistachio"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen]]] = {mode: _mode_factory(mode) for mode in SCREEN_CLASSES}
    COMMANDS = App.COMMANDS | {_commands}
    BINDINGS = [
        *(Binding(str(n), f"switch_mode('{mode}')", label, show=False) for n, (mode, label) in enumerate(SCREENS, 1)),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    #: The workflow open on the Workflows screen (set there, read by Batch); None until one is opened.
    open_workflow: reactive[OpenWorkflow | None] = reactive(None, init=False)

    def __init__(self, settings: Settings, *, demo_label: str | None = None, dashboard: bool = False,
                 health_interval: float = 3.0, backoff: Backoff | None = None,
                 initial_run: Path | None = None) -> None:
        # The first screen is Textual's default mode, built as the app composes: switching to it from a
        # blank default screen would parse the whole stylesheet twice more before the first paint.
        self.DEFAULT_MODE = "dashboard" if dashboard else "servers"  # type: ignore[misc]
        # Its styles are read with the app's, or Textual would parse everything once more to add them.
        super().__init__(css_path=[Path(__file__).with_name(self.CSS_PATH), *screen_styles(self.DEFAULT_MODE)])
        self.settings = settings
        self.demo_label = demo_label
        #: A training run (or output folder, or log) the Training screen opens at start.
        self.initial_run = initial_run
        self.manager = SessionManager(settings.servers, health_interval=health_interval, backoff=backoff)
        self._saved_theme = settings.theme
        self._theme_problems: list[str] = []
        #: The newest progress update per session not yet shown, and the timer that shows it.
        self._progress: dict[ServerSession, SessionUpdate] = {}
        self._progress_timer: Timer | None = None
        #: Keeps every prompt seen in the journal; None until it is open (or when it cannot be).
        self.journal: JournalRecorder | None = None
        self._runpod: PodsMonitor | None = None
        self._runpod_http: httpx.AsyncClient | None = None

    def on_load(self) -> None:
        # Building the first screen makes thousands of objects that all live on: collecting garbage
        # meanwhile (walking everything imported too) would only delay the first paint, by tens of ms.
        gc.disable()
        # Themes are in place before the stylesheet is first parsed: a theme set once the app is
        # mounted has every rule parsed again, and the first paint waits for it.
        themes, self._theme_problems = discover_themes()
        for theme in themes:
            self.register_theme(theme)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.notify(problem, title="Theme skipped", severity="warning")
        for problem in self.settings.problems:
            self.notify(problem, title="Settings", severity="error", timeout=30)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.manager.subscribe(self._on_session_update)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        """Start what the first screen does not need to be drawn: servers' connections, the journal."""
        # Connecting loads httpx and websockets, the journal SQLite and the workflow modules.
        self.manager.start()
        self.run_worker(self._open_journal(), name="journal", exclusive=True)
        # What exists after the first paint (widgets, styles, modules) lives as long as the app:
        # kept out of the collector, a full collection under a flood of events costs half as much.
        gc.freeze()
        gc.enable()

    async def on_unmount(self) -> None:
        gc.unfreeze()
        gc.enable()  # in case the app ends before its first paint
        await self.manager.stop()
        if self._runpod is not None:
            await self._runpod.client.aclose()
        if self._runpod_http is not None:
            await self._runpod_http.aclose()
        if self.journal is not None:
            await self.journal.close()

    async def _open_journal(self) -> None:
        # Opened after the first paint, and SQLite and the journal's modules are imported in the
        # thread: neither the import nor the open (a migration, a retention sweep) delays the screen.
        def open_journal() -> Journal | str:
            # The recorder describes each prompt with the workflow modules: imported here too.
            import pistachio_tui.workflow.edit  # noqa: F401
            from pistachio_tui.journal import Journal, JournalError

            settings = self.settings
            try:
                return Journal(journal_path(), max_entries=settings.journal_max_entries,
                               keep_days=settings.journal_keep_days)
            except JournalError as exc:
                return str(exc)

        journal = await asyncio.to_thread(open_journal)
        if isinstance(journal, str):
            self.notify(f"History will not outlive the servers: {journal}", title="Prompt journal",
                        severity="warning")
            return
        from pistachio_tui.journal_recorder import JournalRecorder

        self.journal = JournalRecorder(
            journal, on_error=lambda message: self.notify(message, title="Prompt journal", severity="warning"))

    def runpod_http(self) -> httpx.AsyncClient:
        """The HTTP client that probes pods' ComfyUI (shared like the monitor; closed with the app)."""
        if self._runpod_http is None:
            import httpx

            self._runpod_http = httpx.AsyncClient(timeout=5.0)
        return self._runpod_http

    def runpod(self) -> PodsMonitor:
        """The one RunPod monitor the Pods screen and the dashboard share: one client, one idle guard, one state.

        Built on first use from the configured key; raises ``ApiKeyMissing`` or
        ``ConfigError`` while there is none (and tries again on the next call).
        """
        if self._runpod is None:
            # RunPod's modules load only when someone looks at pods: start-up stays lean.
            from pistachio_tui.runpod.api import RunPodClient, load_api_key
            from pistachio_tui.runpod.idle import IdleGuard
            from pistachio_tui.runpod.monitor import PodsMonitor

            guard = IdleGuard(idle_minutes=self.settings.idle_minutes, auto_stop=self.settings.auto_stop_idle)
            self._runpod = PodsMonitor(RunPodClient(load_api_key()), guard=guard, comfy_http=self.runpod_http())
        return self._runpod

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name == self._saved_theme:
            return
        self.settings.theme = self._saved_theme = theme.name
        self.save()

    def save(self) -> bool:
        """Write the settings; a failure becomes a toast, never a crash."""
        try:
            save_settings(self.settings)
        except (ConfigError, OSError) as exc:
            self.notify(f"Settings not saved: {exc}", severity="error")
            return False
        return True

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast whose text is never markup: it quotes servers and files (``[Pony] x.safetensors``).

        News goes in 3 s, so at 80×24 a few in a row do not hide the table for long; a warning
        stays 6 s and an error 10 s, long enough to read what to do.
        """
        if timeout is None:
            timeout = TOAST_SECONDS[severity]
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """The palette's Screenshot, saved where a folder exists: Downloads, else the data folder.

        Textual's own delivery writes to ~/Downloads only, and fails when it does not exist.
        """
        downloads = platformdirs.user_downloads_path()
        folder = Path(path) if path else downloads if downloads.is_dir() else data_dir() / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"Screenshot not saved in {folder}: {exc.strerror or exc}", severity="error")
            return None
        self.notify(f"Saved to {saved}", title="Screenshot")
        return saved

    def _on_session_update(self, update: SessionUpdate) -> None:
        if self.journal is not None:
            self.journal.on_update(update)
        if update.kind == FINISHED and update.prompt is not None:
            self._toast_finished(update)
        if update.kind == PROGRESS:
            # Screens re-read the session, so the newest update per frame shows everything;
            # the timer always fires, so the last state of a burst is drawn.
            self._progress[update.session] = update
            if self._progress_timer is None:
                self._progress_timer = self.set_timer(1 / PROGRESS_PER_SECOND, self._flush_progress)
            return
        self._show(update)

    def _flush_progress(self) -> None:
        self._progress_timer = None
        updates, self._progress = list(self._progress.values()), {}
        for update in updates:
            self._show(update)

    def _show(self, update: SessionUpdate) -> None:
        try:
            screen = self.screen
        except ScreenStackError:
            return  # the app is closing: its screens are gone while servers still talk
        screen.post_message(SessionChanged(update))

    def _toast_finished(self, update: SessionUpdate) -> None:
        """Toast our own prompts' results and every failure.

        Prompts queued elsewhere (a browser, a script, the demo's loop) can finish
        every few seconds; a toast for each would bury the ones the user waits for.
        """
        state = update.prompt
        if state is None:
            return
        short = state.prompt_id[:8]
        if state.status == "success":
            if not state.ours:
                return
            files = len(state.outputs)
            self.notify(f"{short} finished in {duration(state.duration)} — {files} output(s)",
                        title=update.session.name)
        elif state.status == "interrupted":
            self.notify(f"{short} was interrupted", title=update.session.name, severity="warning")
        elif state.lost:
            why = state.error.exception_message if state.error else "the server forgot it"
            self.notify(f"{short} is lost: {why}", title=update.session.name,
                        severity="error", timeout=10)
        else:
            node = state.error.node_type if state.error else "a node"
            message = state.error.exception_message if state.error else "failed"
            self.notify(f"{short} failed in {node}: {message}", title=update.session.name,
                        severity="error", timeout=10)

    def server_call(self, call: Awaitable[Any], done: str | None = None) -> None:
        """Run a server request in the background; its error becomes a toast."""
        from pistachio_tui.comfy.errors import ComfyError

        async def run() -> None:
            try:
                await call
            except ComfyError as exc:
                self.notify(exc.message, severity="error", timeout=8)
            else:
                if done:
                    self.notify(done)
        self.run_worker(run(), group="server-calls")

    async def action_quit(self) -> None:
        """Quit, after asking when a batch or a fix (downloads, installs) would be cut short."""
        busy = sorted({LONG_WORK[w.group] for w in self.workers if w.is_running and w.group in LONG_WORK})
        if not busy:
            self.exit()
            return
        from pistachio_tui.ui.dialogs import ConfirmScreen

        question = "\n".join(busy) + "\n\nQuit anyway?"
        self.push_screen(ConfirmScreen(question), lambda yes: self.exit() if yes else None)

    def action_help(self) -> None:
        from pistachio_tui.ui.help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(tuple(screen_class(mode) for mode in SCREEN_CLASSES)))

    def action_set_folder(self, key: str, problem: str = "", typed: str | None = None) -> None:
        """Ask for the folder the setting ``key`` names (one of ``FOLDERS``), check it and save it."""
        from pistachio_tui.ui.dialogs import AskScreen

        question, _, _ = FOLDERS[key]
        current = typed if typed is not None else str(getattr(self.settings, key) or "")
        # The question is markup; the problem quotes the typed path, which may hold brackets.
        self.push_screen(AskScreen(f"[b]{esc(problem)}[/b]\n{question}" if problem else question, current),
                         partial(self._set_folder, key))

    def _set_folder(self, key: str, typed: str | None) -> None:
        if typed is None:
            return
        _, check, name = FOLDERS[key]
        try:
            folder = check(typed)
        except ConfigError as exc:
            self.action_set_folder(key, str(exc), typed)
            return
        setattr(self.settings, key, folder)
        if self.save():
            self.notify(f"{name}: {folder} (saved in the settings)")

    def action_interrupt(self) -> None:
        session = self.manager.active
        if session is None:
            self.notify("No server to interrupt.", severity="warning")
            return
        self.server_call(session.interrupt(), f"Interrupt sent to {session.name}")

    def action_free_memory(self) -> None:
        session = self.manager.active
        if session is None:
            self.notify("No server selected.", severity="warning")
            return
        self.server_call(session.free(), f"{session.name}: models unloaded, memory freed")

    async def show_screen(self, screen_type: type[S]) -> S:
        """Switch to the main screen of ``screen_type`` and return it."""
        await self.switch_mode(screen_type.MODE)
        screen = self.screen
        if not isinstance(screen, screen_type):
            raise TypeError(f"mode {screen_type.MODE!r} shows {type(screen).__name__}, not {screen_type.__name__}")
        return screen

    def on_screen(self, screen_type: type[S], then: Callable[[S], object]) -> None:
        """Switch to the main screen of ``screen_type``, then call ``then`` with it (awaited if it is async)."""
        async def go() -> None:
            result = then(await self.show_screen(screen_type))
            if inspect.isawaitable(result):
                await result
        self.call_later(go)

    def open_fix(self, session: ServerSession, workflow: Workflow) -> None:
        """Go to the Fix screen with ``workflow`` loaded for ``session``'s server."""
        from pistachio_tui.ui.fix.screen import FixScreen

        self.on_screen(FixScreen, lambda screen: screen.fix(session, workflow))

    def add_server(self, config: ServerConfig) -> None:
        """Save a new server, start following it and make it the active one."""
        if config.name not in self.manager.sessions:
            self.settings.servers.append(config)
            self.save()
            self.manager.add(config)
        self.switch_server(config.name)

    def switch_server(self, name: str, *, announce: bool = True) -> None:
        """Make ``name`` the active server: the manager holds it, every screen's header shows it."""
        session = self.manager.sessions.get(name)
        if session is None:
            return
        self.manager.set_active(name)
        self._show(SessionUpdate(session, HEALTH))
        if announce:
            self.notify(f"Active server: {name}")


def run_app(settings: Settings, demo_label: str | None = None, dashboard: bool = False,
            initial_run: Path | None = None) -> int:
    """Run the app until the user quits; returns the exit code."""
    from pistachio_tui.ui.widgets.terminal_graphics import probe

    try:
        # Asked before Textual owns the terminal, whose answers would then arrive as key presses.
        probe()
    except Exception:  # noqa: BLE001 — without an answer, previews fall back to a text description
        pass
    PistachioApp(settings, demo_label=demo_label, dashboard=dashboard, initial_run=initial_run).run()
    return 0
