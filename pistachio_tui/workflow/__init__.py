"""Workflow graphs: loading every format, subgraphs and group nodes, UI → API conversion, what a workflow needs, editing."""
