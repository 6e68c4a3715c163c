"""Property tests: however a log is written and sliced, readers see exactly its lines."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pistachio_tui.training.logindex import LogIndex
from pistachio_tui.training.tail import LogFollower

text_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                              max_size=40), max_size=60)


@settings(max_examples=60, deadline=None)
@given(lines=text_lines, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
       max_bytes=st.integers(min_value=1, max_value=300))
def test_follower_returns_every_complete_line_once(lines, cuts, max_bytes):
    data = "".join(line + "\n" for line in lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log"
        path.write_bytes(b"")
        seen: list[str] = []
        with LogFollower(path, max_bytes=max_bytes) as follower:
            written = 0
            for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
                with open(path, "ab") as fh:
                    fh.write(data[written:cut])
                written = max(written, cut)
                while chunk := follower.read().lines:
                    seen.extend(chunk)
        assert seen == lines


@settings(max_examples=30, deadline=None)
@given(lines=text_lines, block=st.integers(min_value=1, max_value=64), trailing=st.booleans())
def test_index_serves_any_window(lines, block, trailing):
    content = "\n".join(lines) + ("\n" if trailing and lines else "")
    expected = content.split("\n")
    if content.endswith("\n") or not content:
        expected = expected[:-1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log"
        path.write_text(content, encoding="utf-8")
        with LogIndex(path, block=block, follow=False) as index:
            assert index.wait(20)
            assert index.line_count == len(expected)
            for start in range(0, len(expected) + 1, max(1, len(expected) // 5)):
                assert index.lines(start, 7) == expected[start:start + 7]
