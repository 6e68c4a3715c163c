"""The Pistachio app shell: modes for each screen, sessions, themes, toasts."""

from __future__ import annotations

import gc
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import platformdirs
from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.theme import Theme
from textual.timer import Timer

from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.session import FINISHED, PROGRESS, ServerSession, SessionManager, SessionUpdate
from pistachio_tui.comfy.stream import Backoff
from pistachio_tui.config import ConfigError, ServerConfig, Settings, data_dir, save_settings
from pistachio_tui.ui.batch.screen import BatchScreen
from pistachio_tui.ui.commands import PistachioCommands
from pistachio_tui.ui.dashboard.screen import DashboardScreen
from pistachio_tui.ui.fix.screen import FixScreen
from pistachio_tui.ui.format import duration
from pistachio_tui.ui.gpu.screen import GpuScreen
from pistachio_tui.ui.help_screen import HelpScreen
from pistachio_tui.ui.messages import SessionChanged
from pistachio_tui.ui.pods.screen import PodsScreen
from pistachio_tui.ui.queue.screen import QueueScreen
from pistachio_tui.ui.servers.screen import ServersScreen
from pistachio_tui.ui.themes import discover_themes
from pistachio_tui.ui.training.screen import TrainingScreen
from pistachio_tui.ui.widgets.nav_bar import SCREENS
from pistachio_tui.ui.workflows.screen import WorkflowsScreen
from pistachio_tui.workflow.load import Workflow

#: A server can send thousands of progress events a second; more redraws than this only cost CPU
#: (and a busy loop never idles long enough for Textual to repaint at all).
PROGRESS_PER_SECOND = 20

MAIN_SCREENS = (ServersScreen, WorkflowsScreen, QueueScreen, GpuScreen, FixScreen, TrainingScreen, PodsScreen,
                BatchScreen)


class PistachioApp(App):
    """A keyboard-first workbench over every configured ComfyUI server."""

    TITLE = "Pistachio"
    CSS_PATH = "app.tcss"
    MODES = {screen.MODE: screen for screen in MAIN_SCREENS} | {"dashboard": DashboardScreen}
    COMMANDS = App.COMMANDS | {PistachioCommands}
    BINDINGS = [
        *(Binding(str(n), f"switch_mode('{mode}')", label, show=False) for n, (mode, label) in enumerate(SCREENS, 1)),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, settings: Settings, *, demo_label: str | None = None, dashboard: bool = False,
                 health_interval: float = 3.0, backoff: Backoff | None = None,
                 initial_run: Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.demo_label = demo_label
        #: A training run (or output folder, or log) the Training screen opens at start.
        self.initial_run = initial_run
        self.start_mode = "dashboard" if dashboard else "servers"
        self.manager = SessionManager(settings.servers, health_interval=health_interval, backoff=backoff)
        self._saved_theme = settings.theme
        #: The newest progress update per session not yet shown, and the timer that shows it.
        self._progress: dict[ServerSession, SessionUpdate] = {}
        self._progress_timer: Timer | None = None

    def on_mount(self) -> None:
        themes, problems = discover_themes()
        for theme in themes:
            self.register_theme(theme)
        for problem in problems:
            self.notify(problem, title="Theme skipped", severity="warning")
        for problem in self.settings.problems:
            self.notify(problem, title="Settings", severity="error", timeout=30)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.manager.subscribe(self._on_session_update)
        self.manager.start()
        self.switch_mode(self.start_mode)
        # What exists after the first paint (widgets, styles, modules) lives as long as the app:
        # kept out of the collector, a full collection under a flood of events costs half as much.
        self.call_after_refresh(gc.freeze)

    async def on_unmount(self) -> None:
        gc.unfreeze()
        await self.manager.stop()

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
        """A toast whose text is never markup: it quotes servers and files (``[Pony] x.safetensors``)."""
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
            self.notify(f"{short} is lost: {state.error.exception_message}", title=update.session.name,
                        severity="error", timeout=10)
        else:
            node = state.error.node_type if state.error else "a node"
            message = state.error.exception_message if state.error else "failed"
            self.notify(f"{short} failed in {node}: {message}", title=update.session.name,
                        severity="error", timeout=10)

    def server_call(self, call: Awaitable[Any], done: str | None = None) -> None:
        """Run a server request in the background; its error becomes a toast."""
        async def run() -> None:
            try:
                await call
            except ComfyError as exc:
                self.notify(exc.message, severity="error", timeout=8)
            else:
                if done:
                    self.notify(done)
        self.run_worker(run(), group="server-calls")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(MAIN_SCREENS + (DashboardScreen,)))

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

    def open_fix(self, session: ServerSession, workflow: Workflow) -> None:
        """Go to the Fix screen with ``workflow`` loaded for ``session``'s server."""
        async def go() -> None:
            await self.switch_mode("fix")
            await self.screen.fix(session, workflow)
        self.call_later(go)

    def add_server(self, config: ServerConfig) -> None:
        """Save a new server, start following it and make it the active one."""
        if config.name not in self.manager.sessions:
            self.settings.servers.append(config)
            self.save()
            self.manager.add(config)
        self.switch_server(config.name)

    def switch_server(self, name: str) -> None:
        self.manager.set_active(name)
        self.screen.post_message(SessionChanged(SessionUpdate(self.manager.active, "health")))
        self.notify(f"Active server: {name}")


def run_app(settings: Settings, demo_label: str | None = None, dashboard: bool = False,
            initial_run: Path | None = None) -> int:
    """Run the app until the user quits; returns the exit code."""
    try:
        # textual-image asks the terminal what it can draw when first imported; that must
        # happen before Textual owns the terminal, or the answer arrives as key presses.
        import textual_image.widget  # noqa: F401
    except Exception:  # noqa: BLE001 — without it, previews fall back to a text description
        pass
    PistachioApp(settings, demo_label=demo_label, dashboard=dashboard, initial_run=initial_run).run()
    return 0
