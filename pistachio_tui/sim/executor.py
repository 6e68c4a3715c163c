"""Runs queued prompts and emits the websocket messages a real ComfyUI 0.8.0 sends, in its order.

Who gets what follows ComfyUI 0.8.0's ``execution.py``, ``main.py`` and
``comfy_execution/progress.py``: every message goes to the client whose id came
with the prompt, never to other clients. A prompt queued without a client id
sends no ``execution_start``/``cached``/``success``/``error``, ``executing`` or
``executed`` at all, while its ``progress``, ``progress_state``, previews and
``execution_interrupted`` go to everyone. Previews are sent only when the
prompt's ``extra_data.preview_method`` (or the server's default) asks for
them, as JPEG latent previews.

No model runs: a node with a ``steps`` input reports that many progress steps
(``step_delay`` seconds each), every other node finishes at once, image
output nodes write a small real PNG. Node results are cached by input
signature the way ComfyUI's classic cache does: a node whose inputs (and
upstream inputs) match one of the previous prompt's nodes is reported as
cached and not run again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.sim.files import FileStore
from pistachio_tui.sim.hub import Hub
from pistachio_tui.sim.logs import ServerLog
from pistachio_tui.sim.png import colour_of, solid_jpeg, solid_png
from pistachio_tui.sim.prompt_queue import PromptQueue, QueuedPrompt


def _frame(line: int, func: str, code: str, marked: str | None = None) -> str:
    """One traceback frame as Python 3.11 prints it, carets under ``marked`` when given."""
    text = f'  File "/workspace/ComfyUI/execution.py", line {line}, in {func}\n    {code}\n'
    if marked is not None:
        start = code.index(marked)
        text += " " * (4 + start) + "^" * len(marked) + "\n"
    return text


def _awaited(line: int, func: str, code: str) -> str:
    return _frame(line, func, code, code[code.index("await"):])


# Frames of ComfyUI 0.8.0's execution.py that every node exception's traceback starts with.
_EXECUTION_FRAMES = [
    _awaited(518, "execute",
             "output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, "
             "obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, "
             "v3_data=v3_data)"),
    _awaited(329, "get_output_data",
             "return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, "
             "obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, "
             "pre_execute_cb=pre_execute_cb, v3_data=v3_data)"),
    _frame(303, "_async_map_node_over_list", "await process_inputs(input_dict, i)"),
    _frame(291, "process_inputs", "result = f(**inputs)", "f(**inputs)"),
]
_BOOM_MESSAGE = "probe failure: boom"
_PISTACHIO_GREEN = 0x93C572
_MAX_IMAGE_SIDE = 64
_MAX_BATCH = 8


class _Interrupted(Exception):
    def __init__(self, node_id: str):
        super().__init__(node_id)
        self.node_id = node_id


class _NodeFailed(Exception):
    def __init__(self, node_id: str, message: str, exception_type: str, module: str):
        super().__init__(message)
        self.node_id = node_id
        self.exception_type = exception_type
        self.module = module


#: ``--preview-method`` values (``comfy/cli_args.py`` ``LatentPreviewMethod``); "none" sends nothing.
PREVIEW_METHODS = ("none", "auto", "latent2rgb", "taesd")


@dataclass
class Execution:
    """Knobs shared by the server and its executor.

    ``preview_method`` is the server's ``--preview-method`` (ComfyUI's default: none);
    ``node_delay`` is how long every node without steps takes (a real CPU takes a
    while for image nodes too: the contract tests interrupt such a chain).
    """

    step_delay: float
    preview_every: int = 5
    node_delay: float = 0.0
    preview_method: str = "none"
    failing_classes: dict[str, str] = field(default_factory=dict)

    def previews_for(self, extra_data: dict[str, Any]) -> bool:
        """Whether a prompt gets previews: its own ``preview_method`` unless absent or "default"."""
        asked = extra_data.get("preview_method")
        method = asked if asked in PREVIEW_METHODS else self.preview_method
        return method != "none"


def now_ms() -> int:
    return int(time.time() * 1000)


def _node_inputs(prompt: dict[str, Any], node_id: str) -> dict[str, Any]:
    inputs = prompt[node_id].get("inputs", {})
    return inputs if isinstance(inputs, dict) else {}


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def execution_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    """Nodes the outputs need, each after the nodes it reads from."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        stack = [(node_id, False)]
        while stack:
            current, expanded = stack.pop()
            if expanded:
                order.append(current)
                continue
            if current in seen or current not in prompt:
                continue
            seen.add(current)
            stack.append((current, True))
            upstream = [v[0] for v in _node_inputs(prompt, current).values() if _is_link(v)]
            stack.extend((u, False) for u in reversed(upstream))

    for output_id in outputs:
        visit(output_id)
    return order


def signatures(prompt: dict[str, Any]) -> dict[str, str]:
    """A cache key per node: its class and inputs, with links replaced by the upstream node's key."""
    keys: dict[str, str] = {}

    def key(node_id: str, trail: frozenset[str]) -> str:
        if node_id in keys:
            return keys[node_id]
        if node_id not in prompt or node_id in trail:
            return f"missing:{node_id}"
        parts = []
        for name, value in sorted(_node_inputs(prompt, node_id).items()):
            if _is_link(value):
                parts.append([name, key(value[0], trail | {node_id}), value[1]])
            else:
                parts.append([name, value])
        keys[node_id] = json.dumps([prompt[node_id].get("class_type"), parts], sort_keys=True, default=str)
        return keys[node_id]

    for node_id in prompt:
        key(node_id, frozenset())
    return keys


class Executor:
    """The queue worker: one prompt at a time, messages to the client that queued it."""

    def __init__(self, queue: PromptQueue, hub: Hub, files: FileStore, log: ServerLog,
                 object_info: dict[str, Any], knobs: Execution) -> None:
        self.queue = queue
        self.hub = hub
        self.files = files
        self.log = log
        self.object_info = object_info
        self.knobs = knobs
        self.cache: dict[str, dict[str, Any] | None] = {}
        self.interrupted = False
        self.running_client: str | None = None
        self.last_node_id: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.running_client = None
        self.last_node_id = None

    def interrupt(self) -> None:
        self.interrupted = True

    def status_data(self) -> dict[str, Any]:
        return {"status": {"exec_info": {"queue_remaining": self.queue.remaining()}}}

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self.run(item)
            except Exception as error:  # noqa: BLE001 - a simulator bug must not wedge the queue
                self.log.write(f"!!! Simulator error while running {item.prompt_id}: {error!r}\n")
                self.queue.task_done({
                    "prompt": item.as_list(), "outputs": {}, "meta": {},
                    "status": {"status_str": "error", "completed": False, "messages": []},
                })
                self.running_client = None
                self.last_node_id = None
            # Let the next prompt start on a later loop turn, as a worker thread would.
            await asyncio.sleep(0)

    async def run(self, item: QueuedPrompt) -> None:
        """Execute one prompt, record its history entry, and say it finished."""
        self.interrupted = False
        client = item.extra_data.get("client_id")
        self.running_client = client
        run = _Run(self, item, client)
        started = time.monotonic()
        entry = await run.execute()
        self.queue.task_done(entry)
        if entry["status"]["status_str"] == "success":
            self.log.write(f"Prompt executed in {time.monotonic() - started:.2f} seconds\n")
        if client is not None:
            self.hub.emit("executing", {"node": None, "prompt_id": item.prompt_id}, client)
        self.running_client = None
        self.last_node_id = None


class _Run:
    """The state of one prompt's execution."""

    def __init__(self, executor: Executor, item: QueuedPrompt, client: str | None) -> None:
        self.ex = executor
        self.item = item
        self.client = client
        self.prompt = item.prompt
        self.prompt_id = item.prompt_id
        self.messages: list[list[Any]] = []
        self.progress: dict[str, dict[str, Any]] = {}
        self.executed: list[str] = []
        self.ui_outputs: dict[str, Any] = {}
        self.previews = executor.knobs.previews_for(item.extra_data)

    def send(self, event: str, data: dict[str, Any], to_all_without_client: bool = False) -> None:
        """To the prompt's client; without one, only what ComfyUI then sends to everyone."""
        if self.client is not None or to_all_without_client:
            self.ex.hub.emit(event, data, self.client)

    def add_message(self, event: str, data: dict[str, Any]) -> None:
        """A message that also goes into the history entry's ``status.messages``."""
        self.messages.append([event, data])
        self.send(event, data, to_all_without_client=event == "execution_interrupted")

    def set_progress(self, node_id: str, value: float, maximum: float, state: str) -> None:
        self.progress[node_id] = {
            "value": value, "max": maximum, "state": state, "node_id": node_id,
            "prompt_id": self.prompt_id, "display_node_id": node_id,
            "parent_node_id": None, "real_node_id": node_id,
        }
        self.send("progress_state", {"prompt_id": self.prompt_id, "nodes": dict(self.progress)}, True)

    async def execute(self) -> dict[str, Any]:
        self.add_message("execution_start", {"prompt_id": self.prompt_id, "timestamp": now_ms()})
        keys = signatures(self.prompt)
        old_cache = self.ex.cache
        cached = [node_id for node_id in self.prompt if keys[node_id] in old_cache]
        self.add_message("execution_cached", {"nodes": cached, "prompt_id": self.prompt_id, "timestamp": now_ms()})
        new_cache = {keys[node_id]: old_cache[keys[node_id]] for node_id in cached}
        status_str = "success"
        try:
            for node_id in execution_order(self.prompt, self.item.outputs):
                if keys[node_id] in old_cache:
                    self.replay_cached(node_id, old_cache[keys[node_id]])
                    continue
                ui = await self.run_node(node_id)
                self.executed.append(node_id)
                new_cache[keys[node_id]] = ui
            self.add_message("execution_success", {"prompt_id": self.prompt_id, "timestamp": now_ms()})
        except _Interrupted as stop:
            status_str = "error"
            self.add_message("execution_interrupted", {
                "prompt_id": self.prompt_id, "node_id": stop.node_id,
                "node_type": self.prompt[stop.node_id]["class_type"],
                "executed": list(self.executed), "timestamp": now_ms(),
            })
            self.ex.log.write("Processing interrupted\n")
        except _NodeFailed as failure:
            status_str = "error"
            self.add_message("execution_error", self.error_data(failure))
            self.ex.log.write(f"!!! Exception during processing !!! {failure}\n")
        finally:
            self.ex.cache = new_cache
        success = status_str == "success"
        meta = {
            node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            for node_id in self.ui_outputs
        }
        return {
            "prompt": self.item.as_list(),
            "outputs": self.ui_outputs if success else {},
            "status": {"status_str": status_str, "completed": success, "messages": self.messages},
            "meta": meta if success else {},
        }

    def replay_cached(self, node_id: str, ui: dict[str, Any] | None) -> None:
        """A cached output node still shows its result, as the real server re-sends it."""
        if node_id not in self.item.outputs:
            return
        if ui is not None:
            self.ui_outputs[node_id] = ui
            self.send("executed", {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": self.prompt_id})
        self.set_progress(node_id, 1, 1, "finished")

    async def run_node(self, node_id: str) -> dict[str, Any] | None:
        if self.ex.interrupted:
            raise _Interrupted(node_id)
        node = self.prompt[node_id]
        class_type = node["class_type"]
        self.set_progress(node_id, 0.0, 1.0, "running")
        self.ex.last_node_id = node_id
        self.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id})
        inputs = _node_inputs(self.prompt, node_id)
        steps = inputs.get("steps")
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
            await self.step_through(node_id, steps)
        elif self.ex.knobs.node_delay > 0:
            await asyncio.sleep(self.ex.knobs.node_delay)
        self.raise_if_failing(node_id, class_type)
        ui = self.make_outputs(node_id, class_type, inputs)
        if ui is not None:
            self.ui_outputs[node_id] = ui
            self.send("executed", {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": self.prompt_id})
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
            self.set_progress(node_id, steps, steps, "finished")
        else:
            self.set_progress(node_id, 1.0, 1.0, "finished")
        return ui

    async def step_through(self, node_id: str, steps: int) -> None:
        every = max(1, self.ex.knobs.preview_every)
        for step in range(1, steps + 1):
            await asyncio.sleep(self.ex.knobs.step_delay)
            if self.ex.interrupted:
                raise _Interrupted(node_id)
            self.set_progress(node_id, step, steps, "running")
            self.send("progress", {"value": step, "max": steps, "prompt_id": self.prompt_id, "node": node_id}, True)
            if self.previews and (step % every == 0 or step == steps):
                self.send_preview(node_id, step, steps)

    def send_preview(self, node_id: str, step: int, steps: int) -> None:
        shade = int(255 * step / steps)
        jpeg = solid_jpeg(8, 8, (shade // 2, shade, shade // 3))
        metadata = {
            "node_id": node_id, "prompt_id": self.prompt_id, "display_node_id": node_id,
            "parent_node_id": None, "real_node_id": node_id,
        }
        self.ex.hub.emit_preview(jpeg, metadata, self.client)

    def raise_if_failing(self, node_id: str, class_type: str) -> None:
        module = self.ex.object_info.get(class_type, {}).get("python_module", "nodes")
        if class_type == "Boom":
            raise _NodeFailed(node_id, _BOOM_MESSAGE, "RuntimeError", module)
        message = self.ex.knobs.failing_classes.get(class_type)
        if message is not None:
            raise _NodeFailed(node_id, message, "RuntimeError", module)

    def error_data(self, failure: _NodeFailed) -> dict[str, Any]:
        module_path = failure.module.replace(".", "/")
        if failure.module.startswith("custom_nodes."):
            module_path += "/__init__.py"
        else:
            module_path += ".py"
        frame = (f'  File "/workspace/ComfyUI/{module_path}", line 28, in run\n'
                 f"    raise {failure.exception_type}({str(failure)!r})\n").replace("'", '"')
        inputs = _node_inputs(self.prompt, failure.node_id)
        current_inputs = {
            name: [f"<output {value[1]} of node {value[0]}>" if _is_link(value) else value]
            for name, value in inputs.items()
        }
        return {
            "prompt_id": self.prompt_id,
            "node_id": failure.node_id,
            "node_type": self.prompt[failure.node_id]["class_type"],
            "executed": list(self.executed),
            "exception_message": f"{failure}\n",
            "exception_type": failure.exception_type,
            "traceback": [*_EXECUTION_FRAMES, frame],
            "current_inputs": current_inputs,
            "current_outputs": list(self.prompt),
            "timestamp": now_ms(),
        }

    def upstream_value(self, node_id: str, name: str, default: Any) -> Any:
        """The first constant called ``name`` found walking up the node's links (image size, colour...)."""
        seen: set[str] = set()
        queue = [node_id]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.prompt:
                continue
            seen.add(current)
            inputs = _node_inputs(self.prompt, current)
            value = inputs.get(name)
            if value is not None and not _is_link(value):
                return value
            queue.extend(v[0] for v in inputs.values() if _is_link(v))
        return default

    def upstream_int(self, node_id: str, name: str, default: int) -> int:
        try:
            return int(self.upstream_value(node_id, name, default))
        except (TypeError, ValueError):
            return default

    def make_outputs(self, node_id: str, class_type: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Image-saving output nodes write PNGs; what they report is their ``executed`` output."""
        info = self.ex.object_info.get(class_type, {})
        if not info.get("output_node") or "images" not in inputs:
            return None
        temporary = class_type == "PreviewImage"
        kind = "temp" if temporary else "output"
        prefix = self.ex.files.temp_prefix() if temporary else str(inputs.get("filename_prefix", "ComfyUI"))
        width = min(_MAX_IMAGE_SIDE, self.upstream_int(node_id, "width", _MAX_IMAGE_SIDE))
        height = min(_MAX_IMAGE_SIDE, self.upstream_int(node_id, "height", _MAX_IMAGE_SIDE))
        batch = max(1, min(_MAX_BATCH, self.upstream_int(node_id, "batch_size", 1)))
        rgb = colour_of(self.upstream_int(node_id, "color", _PISTACHIO_GREEN))
        text = {"prompt": json.dumps(self.prompt)}
        for key, value in (self.item.extra_data.get("extra_pnginfo") or {}).items():
            text[key] = json.dumps(value)
        images = []
        for _ in range(batch):
            subfolder, filename = self.ex.files.next_output_name(kind, prefix)
            self.ex.files.put(kind, subfolder, filename, solid_png(width, height, rgb, text))
            images.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return {"gifs" if class_type.startswith("VHS_") else "images": images}
