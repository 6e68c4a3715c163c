"""State the simulator keeps for a days-long demo stays bounded."""

from __future__ import annotations

from pistachio_tui.sim.files import MAX_FILES, FileStore


def test_output_counters_are_bounded_like_the_files():
    store = FileStore()
    for _ in range(MAX_FILES + 100):
        # PreviewImage: a fresh random prefix on every run.
        subfolder, name = store.next_output_name("temp", FileStore.temp_prefix())
        store.put("temp", subfolder, name, b"png")
    assert len(store._counters) <= MAX_FILES
    assert store.next_output_name("output", "ComfyUI") == ("", "ComfyUI_00001_.png")
    assert store.next_output_name("output", "ComfyUI") == ("", "ComfyUI_00002_.png")
