"""Command palette (ctrl+p): every action by name — screens, servers, workflows, themes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.widgets.nav_bar import SCREENS

if TYPE_CHECKING:
    from pistachio_tui.ui.app import PistachioApp

Command = tuple[str, Callable[[], object], str]


class PistachioCommands(Provider):
    """Go to a screen, switch server or theme, open a bundled workflow, interrupt, free memory."""

    @property
    def papp(self) -> PistachioApp:
        # Textual types ``app`` as any App; these only ever run inside PistachioApp.
        return cast("PistachioApp", self.app)

    def commands(self) -> list[Command]:
        # Imported when the palette opens, not with the app: start-up pays only for the first screen.
        from pistachio_tui.ui.servers.screen import ServersScreen
        from pistachio_tui.ui.workflows.screen import WorkflowsScreen
        from pistachio_tui.ui.workflows.sources import bundled_dir, workflow_files

        app = self.papp
        found: list[Command] = [
            (f"Go to {label}", partial(app.switch_mode, mode), f"screen {n} (key {n})")
            for n, (mode, label) in enumerate(SCREENS, 1)
        ]
        found.append(("Go to Dashboard", partial(app.switch_mode, "dashboard"), "compact overview"))
        found += [(f"Switch server: {name}", partial(app.switch_server, name), session.config.url)
                  for name, session in app.manager.sessions.items()]
        found += [
            ("Interrupt the running prompt", app.action_interrupt, "on the active server (i on Queue)"),
            ("Free memory (unload models)", app.action_free_memory, "POST /free on the active server"),
            ("Add a server", partial(app.on_screen, ServersScreen, ServersScreen.action_add), "name, URL, auth header"),
            ("Show the server log", partial(app.on_screen, ServersScreen, ServersScreen.action_logs), "Servers screen"),
            ("Queue the open workflow", partial(app.on_screen, WorkflowsScreen, WorkflowsScreen.action_queue_prompt),
             "g on Workflows"),
            ("Open a workflow by path", partial(app.on_screen, WorkflowsScreen, WorkflowsScreen.action_open_path),
             "o on Workflows"),
            ("Set the ComfyUI folder", partial(app.action_set_folder, "comfy_dir"),
             "on this machine: where Fix downloads models and Training promotes LoRAs"),
            ("Set the diffusion-pipe folder", partial(app.action_set_folder, "diffusion_pipe_dir"),
             "the checkout Training starts and resumes runs with"),
            ("Help: all keys", app.action_help, "?"),
        ]
        found += self._view_commands()
        found += [(f"Open workflow: {path.stem}", partial(self._open_workflow, path), "bundled sample")
                  for path in workflow_files(bundled_dir())]
        found += [(f"Theme: {name}", partial(setattr, app, "theme", name), "saved in settings")
                  for name in sorted(app.available_themes)]
        return found

    def _view_commands(self) -> list[Command]:
        """The actions of the view hosted by the current screen (GPU, Pods, Training, Fix, Batch)."""
        screen = self.screen
        if not isinstance(screen, ViewScreen):
            return []
        return [(title, partial(screen.run_view_action, action), help_text)
                for title, help_text, action in screen.VIEW_COMMANDS]

    def _open_workflow(self, path: Path) -> None:
        from pistachio_tui.ui.workflows.screen import WorkflowsScreen

        self.papp.on_screen(WorkflowsScreen, lambda screen: screen.open_workflow(path))

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
