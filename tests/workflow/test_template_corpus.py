"""The whole pinned template package loads, converts and is analysed."""

from __future__ import annotations

import random

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import analyse
from pistachio_tui.workflow.load import WorkflowError, load_workflow
from tests.workflow.helpers import corpus_files, object_info


def test_corpus_converts():
    oi = object_info()
    files = corpus_files()
    converted, with_unknown, failed, with_subgraphs, nodes = 0, 0, [], 0, 0
    for path in files:
        try:
            workflow = load_workflow(path)
            result = to_api(workflow, oi, rng=random.Random(0))
            analyse(workflow, oi)
        except WorkflowError as exc:
            failed.append(f"{path.name}: {exc}")
            continue
        converted += 1
        nodes += len(result.prompt)
        with_unknown += bool(result.unknown_types)
        with_subgraphs += bool(workflow.graph.subgraphs)
    print(
        f"\ntemplate corpus: {len(files)} workflows, {converted} converted "
        f"({with_unknown} with unknown node types, {with_subgraphs} with subgraphs), "
        f"{len(failed)} failed, {nodes} API nodes"
    )
    for line in failed:
        print("  failed:", line)
    assert len(files) >= 580
    assert converted >= 0.99 * len(files)
    assert with_subgraphs > 50
