"""``pistachio demo``: the app on an embedded simulated ComfyUI server.

The simulator runs on its own event loop in a thread, so the app talks to it
over real HTTP and websockets exactly as it would to a real server, and a busy
UI never slows the simulated GPU down (nor the other way round). A synthetic
DiffusionPipe run "trains" in another thread, and both share a throwaway
ComfyUI folder, so a promoted LoRA shows up in the simulated server's list.
A "downloaded" workflow with two missing node packs and missing models sits in
a scratch workflows folder, so the fix flow can be tried end to end (its
models come from a simulated local file host). A simulated RunPod account
(three pods, all named SIMULATED) fills the Pods screen; every RunPod address
and the key point at it only inside this process.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from pistachio_tui.cli import exit_codes

if TYPE_CHECKING:
    from pistachio_tui.config import Settings
    from pistachio_tui.sim.runpod import FakeRunPod
    from pistachio_tui.sim.server import SimServer

DEMO_LABEL = "SIMULATED ComfyUI — demo, no real GPU"
#: The simulator's own txt2img workflow: its models exist there, so it always runs.
DEMO_WORKFLOW = "sim_txt2img.json"
#: Named like the server, so nobody mistakes it for a real run; it is also the promoted LoRA's name.
DEMO_RUN = "SIMULATED-demo-lora"
#: 30 epochs of 20 steps at this pace train for about three minutes: long enough to
#: watch the curves move, short enough to see the run converge and complete.
TRAIN_STEP_SECONDS = 0.3
TRAIN_EPOCHS, TRAIN_STEPS_PER_EPOCH = 30, 20
#: Obviously not a RunPod key, and set only inside the demo process.
DEMO_RUNPOD_KEY = "SIMULATED-demo-key-not-a-real-RunPod-key"
DEMO_COMFY_POD = "sim0comfy4090"
#: The shortest idle time the settings allow, so the demo's idle pod gets flagged within a minute.
DEMO_IDLE_MINUTES = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="open the app on an embedded simulated ComfyUI server",
        description="Open Pistachio on a simulated ComfyUI server (no GPU, no network needed).",
    )
    parser.add_argument("--step-delay", type=exit_codes.non_negative_number, default=0.3,
                        help="seconds per simulated sampler step")
    parser.add_argument("--dashboard", action="store_true", help="open the compact dashboard instead")
    parser.add_argument("--no-autorun", action="store_true", help="do not keep a demo prompt running")
    parser.set_defaults(func=run_demo)


class SimThread:
    """A ``SimServer`` on a private event loop in a daemon thread."""

    def __init__(self, **sim_options) -> None:
        self._options = sim_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pistachio-sim", daemon=True)
        self._server: SimServer | None = None
        self.url = ""

    @property
    def server(self) -> SimServer:
        if self._server is None:
            raise RuntimeError("the simulator is not started yet")
        return self._server

    def start(self) -> str:
        from pistachio_tui.sim.server import SimServer

        self._thread.start()
        self._server = SimServer(**self._options)
        self.url = self.call(self._server.start())
        return self.url

    def call(self, coro, timeout: float = 30.0):
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self) -> None:
        if self._server is not None:
            self.call(self._server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def keep_busy(url: str, prompt: dict, idle_pause: float = 1.5) -> None:
    """Queue the demo prompt again whenever the simulated queue runs dry.

    A new seed each time keeps the simulator from answering from its cache.
    """
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError
    from pistachio_tui.workflow.edit import apply_seed_mode

    async with ComfyClient(url) as client:
        while True:
            try:
                queue = await client.queue()
                if not queue.running and not queue.pending:
                    apply_seed_mode(prompt, "random")
                    # No client_id: ComfyUI then sends the run's progress to every
                    # socket, so the app sees it like a prompt queued from a script.
                    await client.post_json("/prompt", {"prompt": prompt})
            except ComfyError:
                pass  # the user may be trying the "server down" switches
            await asyncio.sleep(idle_pause)


def demo_prompt(object_info: dict) -> dict:
    """The API prompt the demo keeps running."""
    from pistachio_tui.sim.catalog import seed_workflows
    from pistachio_tui.workflow.convert import load_prompt_for_run

    return load_prompt_for_run(seed_workflows()[DEMO_WORKFLOW], object_info)


def stock_bundled_models(server) -> list[str]:
    """Give the simulated server every model the bundled sample workflows use,
    so each of them runs in the demo; returns ``folder/name`` of each."""
    from pistachio_tui.ui.workflows.sources import bundled_dir, workflow_files
    from pistachio_tui.workflow.deps import analyse
    from pistachio_tui.workflow.load import WorkflowError, load_workflow

    object_info, stocked = server.object_info(), []
    for path in workflow_files(bundled_dir()):
        try:
            needs = analyse(load_workflow(path), object_info)
        except WorkflowError:
            continue  # a broken sample shows its own error in the Workflows screen
        for model in needs.models:
            if model.folder and not model.unsafe:
                server.add_model(model.folder, model.name)
                stocked.append(f"{model.folder}/{model.name}")
    return stocked


def write_broken_workflow(folder: Path, host_url: str) -> Path:
    """Save the demo's broken workflow (models on ``host_url``) into ``folder``."""
    import json

    from pistachio_tui.sim.demo_fix import BROKEN_WORKFLOW_FILE, broken_workflow

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BROKEN_WORKFLOW_FILE
    path.write_text(json.dumps(broken_workflow(host_url), indent=1), encoding="utf-8")
    return path


@dataclass
class Demo:
    """What the app is opened on: throwaway settings, the simulator and the training run."""

    settings: Settings
    sim: SimThread
    scratch: Path
    comfy_dir: Path
    run_dir: Path
    #: The broken workflow the fix flow repairs in the demo.
    broken_workflow: Path
    #: The simulated RunPod account the Pods screen shows.
    runpod: FakeRunPod


def start_training(output_dir: Path, stop: threading.Event, step_seconds: float) -> tuple[Path, threading.Thread]:
    """Write the demo's synthetic run in a daemon thread, one step every ``step_seconds``
    until it completes or ``stop`` is set; returns once its first step is on disk."""
    from pistachio_tui.training.synth import write_run

    started = threading.Event()

    def pace(step: int) -> bool:
        started.set()
        return not stop.wait(step_seconds)

    def train() -> None:
        try:
            # A healthy run: no stray traceback, and the speed it reports is the pace it keeps.
            write_run(output_dir, name=DEMO_RUN, epochs=TRAIN_EPOCHS, steps_per_epoch=TRAIN_STEPS_PER_EPOCH,
                      pace=pace, interleaved_traceback=False, iter_time=step_seconds)
        finally:
            started.set()

    thread = threading.Thread(target=train, name="pistachio-demo-training", daemon=True)
    thread.start()
    # The run folder is recognised by its TensorBoard file, so the Training screen
    # must not look before the trainer has written it.
    started.wait(timeout=30)
    return output_dir / DEMO_RUN, thread


def simulated_runpod(comfy_url: str) -> FakeRunPod:
    """The demo's RunPod account: a pod whose ComfyUI is the demo's simulated server, an idle one
    still billing (so the idle flag and a stop can be tried) and a stopped one (to start)."""
    from pistachio_tui.sim.runpod import FakeRunPod, make_pod

    pods = [
        make_pod(DEMO_COMFY_POD, "SIMULATED comfy-4090", gpu_util=87.0, memory_util=61.0, uptime=7380),
        make_pod("sim0idle0a100", "SIMULATED idle-a100", gpu="NVIDIA A100 80GB PCIe", cost_per_hr=1.64,
                 gpu_util=0.0, uptime=5400, public_ip=None),
        make_pod("sim0stopped40", "SIMULATED stopped-a40", gpu="NVIDIA A40", cost_per_hr=0.39, running=False),
    ]
    # graphql-core is a test dependency: the demo's answers come from the same code either way.
    # A balance that lasts days at this spend: the low-balance warning is not what the demo is about.
    runpod = FakeRunPod(api_key=DEMO_RUNPOD_KEY, pods=pods, balance=120.0,
                        validate_schema=find_spec("graphql") is not None)
    runpod.proxied[DEMO_COMFY_POD] = comfy_url
    return runpod


def runpod_environ(runpod: FakeRunPod) -> dict[str, str]:
    """Every RunPod address and the key, pointed at the simulated RunPod (nothing reaches RunPod)."""
    base = runpod.url.removesuffix("/graphql")
    return {"RUNPOD_API_URL": runpod.url, "RUNPOD_REST_URL": f"{base}/v2", "RUNPOD_PROXY_URL": runpod.proxy_url,
            "RUNPOD_SERVERLESS_URL": base, "RUNPOD_API_KEY": runpod.api_key}


@contextmanager
def demo_session(*, step_delay: float = 0.3, autorun: bool = True,
                 train_step_seconds: float = TRAIN_STEP_SECONDS) -> Iterator[Demo]:
    """The simulator, the training run and a scratch ComfyUI folder, all removed on exit."""
    from pistachio_tui.config import ServerConfig, Settings, data_dir_set_to, environment_set_to, load_settings
    from pistachio_tui.sim.demo_fix import ModelHost

    with (tempfile.TemporaryDirectory(prefix="pistachio-demo-", ignore_cleanup_errors=True) as tmp,
          data_dir_set_to(Path(tmp) / "data"), ExitStack() as stack):
        scratch = Path(tmp)
        comfy_dir = scratch / "ComfyUI"
        models_dir = comfy_dir / "models"
        (models_dir / "loras").mkdir(parents=True)
        sim = SimThread(step_delay=step_delay, manager=True, models_dir=models_dir)
        stop = threading.Event()
        trainer: threading.Thread | None = None
        url = sim.start()
        host = ModelHost()
        runpod = simulated_runpod(url)
        try:
            sim.call(runpod.start())
            stack.enter_context(environment_set_to(runpod_environ(runpod)))
            stock_bundled_models(sim.server)
            broken = write_broken_workflow(scratch / "workflows", sim.call(host.start()))
            if autorun:
                sim.submit(keep_busy(url, demo_prompt(sim.server.object_info())))
            run_dir, trainer = start_training(scratch / "training", stop, train_step_seconds)
            user = load_settings()
            # The demo never writes the user's settings: it gets a throwaway copy.
            settings = Settings(
                servers=[ServerConfig("demo (simulated)", url)],
                theme=user.theme,
                workflow_dirs=[broken.parent, *user.workflow_dirs],
                comfy_dir=comfy_dir,
                idle_minutes=DEMO_IDLE_MINUTES,
                path=scratch / "settings.toml",
            )
            yield Demo(settings, sim, scratch, comfy_dir, run_dir, broken, runpod)
        finally:
            # The environment goes back before the simulated RunPod stops answering.
            stack.close()
            sim.call(runpod.stop())
            stop.set()
            # The trainer must stop writing before its folder is removed under it.
            if trainer is not None:
                trainer.join(timeout=5)
            sim.call(host.stop())
            sim.stop()


def run_demo(args: argparse.Namespace) -> int:
    from pistachio_tui.ui.app import run_app

    with demo_session(step_delay=args.step_delay, autorun=not args.no_autorun) as demo:
        return run_app(demo.settings, demo_label=DEMO_LABEL, dashboard=args.dashboard, initial_run=demo.run_dir)
