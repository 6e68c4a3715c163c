"""Exit codes shared by every headless subcommand, so scripts can branch on them."""

OK = 0
#: The work ran but ended badly: an execution error, an interrupt, a failed step.
FAILED = 1
#: The server refused the input (a prompt failing validation, a bad workflow file).
REJECTED = 2
#: The server (ComfyUI, RunPod, a download host) could not be reached.
UNREACHABLE = 3
#: An input file named on the command line does not exist or cannot be read (sysexits' EX_NOINPUT).
NO_INPUT = 66
#: The command line or the configuration is wrong.
USAGE = 64
#: A bug: an exception Pistachio did not plan for (details in the debug log).
INTERNAL = 70
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def input_error(path: object) -> int:
    """The exit code for an input file that could not be used: :data:`NO_INPUT` when it is not a
    file this process can read (missing, a folder, no permission), :data:`REJECTED` when it was
    read and is not a workflow. Scripts branching on "rejected" must not retry a typo'd path."""
    import os
    from pathlib import Path

    readable = isinstance(path, (str, Path)) and Path(path).is_file() and os.access(path, os.R_OK)
    return REJECTED if readable else NO_INPUT


def positive_number(text: str) -> float:
    """An argparse ``type``: a finite number above 0 (seconds, minutes, dollars). ``nan``,
    ``inf`` and ``-1`` parse as floats, and then wait forever, spin, or reach an API."""
    return _number(text, minimum_excluded=True)


def non_negative_number(text: str) -> float:
    """An argparse ``type``: a finite number, 0 or more."""
    return _number(text, minimum_excluded=False)


def _number(text: str, *, minimum_excluded: bool) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (minimum_excluded and value == 0):
        wanted = "a number above 0" if minimum_excluded else "a number, 0 or more"
        raise argparse.ArgumentTypeError(f"give {wanted}, not {text!r}")
    return value


class UsageError(Exception):
    """The command line is wrong; ``main`` prints the message and exits with :data:`USAGE`."""


def check_server_url(url: str) -> str:
    """``url`` if it can name a ComfyUI server (http/https, a host, a port in 1..65535), else
    :class:`UsageError` saying what is wrong: ``localhost:abc`` or ``http://[::1`` must not
    reach the HTTP library, which answers with exceptions of its own. The same rules as a
    server added in the app or the settings file (``config.check_server_url``)."""
    from pistachio_tui.config import InvalidServerURL
    from pistachio_tui.config import check_server_url as check

    try:
        return check(url)
    except InvalidServerURL as exc:
        raise UsageError(str(exc)) from None


def server_url(wanted: str) -> str:
    """A ``--server`` value that is not a configured name, as a checked URL (``host:port`` → http)."""
    wanted = wanted.strip()
    return check_server_url(wanted if "://" in wanted else f"http://{wanted}")
