"""TensorBoard scalars are read incrementally with TensorBoard's own reader."""

from __future__ import annotations

from tensorboardX import SummaryWriter

from pistachio_tui.training.tbscalars import ScalarReader


def test_reads_only_new_scalars_and_new_files(tmp_path):
    writer = SummaryWriter(logdir=str(tmp_path))
    writer.add_scalar("train/loss", 0.5, 1)
    writer.add_scalar("eval/loss", 0.3, 0)
    writer.close()
    reader = ScalarReader(tmp_path)
    first = reader.read()
    assert [(s.tag, s.step, round(s.value, 4)) for s in first] == [("train/loss", 1, 0.5), ("eval/loss", 0, 0.3)]
    assert reader.read() == []
    # A resumed run writes a second event file into the same folder.
    writer = SummaryWriter(logdir=str(tmp_path), filename_suffix=".resumed")
    writer.add_scalar("train/loss", 0.4, 2)
    writer.close()
    assert [(s.tag, s.step) for s in reader.read()] == [("train/loss", 2)]


def test_backlog_is_bounded_per_call(tmp_path):
    writer = SummaryWriter(logdir=str(tmp_path))
    for step in range(50):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
    writer.close()
    reader = ScalarReader(tmp_path, max_events=20)
    sizes = []
    while batch := reader.read():
        sizes.append(len(batch))
    assert sizes == [20, 20, 10]
