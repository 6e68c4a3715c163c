"""A key footer that shows whole keys: the ones that do not fit are left out, not cut.

``FooterKey`` comes from Textual's private ``_footer`` module (it is not exported); the
narrow-screen tests fail if it or the compact footer's styles change.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: The action whose key stays whatever the width: the help lists every key left out.
KEPT_ACTION = "help"


def _label_width(key: FooterKey) -> int:
    # Textual's compact footer styles (``Footer.-compact``): no padding around the key, one
    # column before the description.
    return cell_len(key.key_display) + (1 + cell_len(key.description) if key.description else 0)


def key_width(key: FooterKey) -> int:
    """Columns a key of the compact footer takes: its label, then its one-column margin."""
    return _label_width(key) + 1


def palette_width(key: FooterKey) -> int:
    """Columns of the command-palette key docked on the right: its one-column border, then its label."""
    return 1 + _label_width(key)


def fitting(keys: list[FooterKey], room: int) -> list[FooterKey]:
    """The keys to show in ``room`` columns, in their order: from the first, as many as fit,
    the help key always."""
    kept = [key for key in keys if key.action == KEPT_ACTION]
    budget = room - sum(key_width(key) for key in kept)
    shown = set(map(id, kept))
    for key in keys:
        if key.action == KEPT_ACTION:
            continue
        width = key_width(key)
        if width > budget:
            break
        budget -= width
        shown.add(id(key))
    return [key for key in keys if id(key) in shown]


class FittedFooter(Footer):
    """Textual's compact footer, leaving out the keys that would not fit in its width.

    Textual's own cuts the last key that does not fit mid-word ("f F…" at 80 columns);
    this one leaves out whole keys from the end, and keeps the help key, where all are listed.
    """

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._composed_width = 0

    def compose(self) -> ComposeResult:
        self._composed_width = width = self.size.width
        if not width or self._grouped():
            # Not laid out yet, or key groups, which this footer does not measure: Textual's own.
            yield from super().compose()
            return
        children = list(super().compose())
        palette = [c for c in children if isinstance(c, FooterKey) and c.has_class("-command-palette")]
        keys = [c for c in children if isinstance(c, FooterKey) and c not in palette]
        yield from fitting(keys, width - sum(palette_width(key) for key in palette))
        yield from palette

    def _grouped(self) -> bool:
        return any(binding.group is not None for _, binding, _, _ in self.screen.active_bindings.values())

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
