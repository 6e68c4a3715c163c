"""DiffusionPipe LoRA training: watch runs, pick the epoch, promote it, prepare runs.

No UI here (never imports textual). What a Training screen calls:

Watch a run (``watch.py``)::

    watcher = RunWatcher(target, log=None)      # run dir, output dir (newest run) or log file;
                                                # raises RunNotFound
    async for state in watcher.watch(interval=1.0):   # polls in a worker thread
        ...                                     # RunState: status, epoch/total_epochs, step/total_steps,
                                                # progress, loss, loss_ema, loss_series.points, lr,
                                                # it_per_s, eta_s, eval_loss_by_epoch(), evals,
                                                # checkpoints (.saved, .global_steps, .saving),
                                                # saved_epochs, errors (kind, line_no, text, suggestion,
                                                # traceback), nan_count, to_dict()
    watcher.close()

The state is mutated only inside a poll, and ``watch`` polls again only when
the consumer asks for the next item, so rendering between items is safe.

Pick and promote (``converge.py``, ``promote.py``)::

    state.candidates()                    # every save (epochN/, stepN/) with its step and the eval there
    pick = state.convergence(patience=3, tolerance=0.0, chosen=None)   # Convergence
    pick.best, pick.best_step, pick.stop_step, pick.chosen, pick.explanation
    promoted = promote(state.run_dir, "step15", comfy_dir, name=None, overwrite=False)
    promote_remote(state.run_dir, "epoch7", RemoteComfy.parse("root@host:/workspace/ComfyUI", port))
    promoted.path, promoted.trigger       # raises CheckpointUnusable / PromoteRefused

Compare saves by eye (``tournament.py``): ``pick_contenders``, ``run_tournament`` (one fleet
batch, a grid sheet). Start and resume runs (``launch.py``): ``plan_launch``/``plan_resume``,
``start(plan, mode="detach"|"tmux"|"foreground")``. Captions (``captions.py``):
``review_captions``, ``set_caption``, ``run_captioner``.

Blocking calls (``promote``, ``prepare_run``, ``LogIndex.find``) belong in a worker.

Prepare a run (``prepare.py``, ``presets.py``, ``dataset.py``)::

    report = inspect_dataset(folder)       # counts, sizes (video lengths), missing/empty captions
    preset = get_preset("4090", "wan14b")  # .choices(): name -> Choice(value, why); 24/32/48/80/141 GB rows
    run = prepare_run(folder, out, trigger="pstch", gpu="4090", model="wan14b")
    run.plan                               # RunPlan: buckets kept/dropped (buckets.py), repeats,
                                           # steps/epoch, total, warm-up, rough duration
    run.main_toml, run.launch_command, run.resume_command, run.warnings

View a huge log (``logindex.py``)::

    index = LogIndex(state.log_path)       # indexes in its own thread
    index.progress                         # ScanProgress(scanned, size, lines, caught_up)
    index.lines(start, count); index.find("OutOfMemory", from_line, backwards=False)
    index.close()

:mod:`~pistachio_tui.training.synth` writes synthetic runs for demos and tests.
Every error raised here derives from :class:`~pistachio_tui.training.errors.TrainingError`.
"""
