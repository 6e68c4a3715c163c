"""DiffusionPipe LoRA training: watch runs, pick the epoch, promote it, prepare runs.

No UI here (never imports textual). The pieces a screen needs:

- :class:`~pistachio_tui.training.watch.RunWatcher` — ``RunWatcher(target)``;
  ``poll()`` (blocking) or ``async for state in watcher.watch(interval)``;
  yields a :class:`~pistachio_tui.training.watch.RunState`.
- :func:`~pistachio_tui.training.converge.find_convergence` — the epoch to keep.
- :func:`~pistachio_tui.training.promote.promote` — copy it into ComfyUI.
- :func:`~pistachio_tui.training.prepare.prepare_run` — dataset split, TOMLs, command.
- :class:`~pistachio_tui.training.logindex.LogIndex` — view a multi-GB log by line number.
- :mod:`~pistachio_tui.training.synth` — synthetic runs for demos and tests.
"""
