"""Settings (TOML in the user config dir) and secrets (env vars or a 0600 file).

The settings file is meant to be edited by hand, so a mistake in it must come
back as a message naming the file and line, never as a traceback; saving edits
the file in place, so the user's comments, order and tables survive.

Every environment variable Pistachio reads is read here (see the README's table).
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs

if TYPE_CHECKING:
    import tomlkit.items

APP_NAME = "pistachio"
SETTINGS_FILE = "settings.toml"
SECRETS_FILE = "secrets.toml"
#: Secrets Pistachio knows about; each is read from the env var of the same name first.
SECRET_NAMES = ("RUNPOD_API_KEY", "HF_TOKEN")


class ConfigError(Exception):
    """The settings or secrets file cannot be used; the message says where and why."""


class InvalidServerURL(ConfigError):
    """A server URL that Pistachio could not connect to; the message says what is wrong."""


def check_server_url(url: str) -> str:
    """``url`` as Pistachio stores it (no trailing slash), or :class:`InvalidServerURL`.

    Everything a later start or connect would trip on is caught here, so a typo is
    refused when it is typed instead of crashing the app on every start after it.
    """
    shown = hide_password(url) if "@" in url else url
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidServerURL(f"{shown!r} is not a valid URL ({exc}); e.g. http://127.0.0.1:8188") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidServerURL(f"{shown!r} must start with http:// or https://")
    if not parts.hostname:
        raise InvalidServerURL(f"{shown!r} names no host; e.g. http://127.0.0.1:8188")
    if port == 0:
        raise InvalidServerURL(f"{shown!r}: port 0 is not a port a server listens on (1-65535)")
    if parts.query or parts.fragment:
        raise InvalidServerURL(f"{shown!r}: give the server's address only, without ?… or #…")
    return url.strip().rstrip("/")


@dataclass
class ServerConfig:
    """A ComfyUI server the user connects to."""

    name: str
    url: str
    #: Extra HTTP headers, e.g. ``Authorization`` for a proxy in front of ComfyUI.
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")

    def __repr__(self) -> str:
        # Header values and a password in the URL are credentials: only their presence shows.
        headers = {name: "…" for name in self.headers}
        return f"ServerConfig(name={self.name!r}, url={hide_password(self.url)!r}, headers={headers!r})"


@dataclass
class Settings:
    """Everything the user can configure, with the defaults a new user gets."""

    servers: list[ServerConfig] = field(default_factory=list)
    theme: str = "pistachio"
    workflow_dirs: list[Path] = field(default_factory=list)
    #: The ComfyUI folder when ComfyUI runs on this machine (models are written there).
    comfy_dir: Path | None = None
    #: The diffusion-pipe checkout, for the app (before ``$DIFFUSION_PIPE_DIR`` and the usual places).
    diffusion_pipe_dir: Path | None = None
    gpu_interval: float = 1.0
    idle_minutes: float = 30.0
    auto_stop_idle: bool = False
    #: The prompt journal keeps at most this many prompts, and none older than ``journal_keep_days``.
    journal_max_entries: int = 200_000
    journal_keep_days: float | None = None
    path: Path = field(default_factory=lambda: config_dir() / SETTINGS_FILE)
    #: Entries of the file that were skipped, each naming its line and what is wrong.
    problems: list[str] = field(default_factory=list)

    def server(self, name_or_url: str) -> ServerConfig | None:
        """The configured server with this name or URL, if any."""
        wanted = name_or_url.rstrip("/")
        for server in self.servers:
            if wanted in (server.name, server.url):
                return server
        return None


def hide_password(url: str) -> str:
    """``url`` with the password of ``user:password@host`` replaced by ``…``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:…@{host}"))


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in it replaced by ``[hidden]``, for messages that quote
    what a server said (a proxy's error page may echo the request's headers).

    A header value like ``Bearer abc…`` is also hidden when only its credential shows.
    Values shorter than six characters are left alone: they are no credentials and
    replacing them would garble the text.
    """
    for secret in secrets:
        for part in (secret, secret.split(" ", 1)[-1]):
            if len(part) >= 6:
                text = text.replace(part, "[hidden]")
    return text


def config_dir() -> Path:
    """The folder holding settings, secrets and user themes."""
    override = os.environ.get("PISTACHIO_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME))


def state_dir() -> Path:
    """Where resumable jobs (the fix flow) keep their journals: with the data, not the settings,
    so one ``PISTACHIO_DATA_DIR`` (the demo's scratch folder, a test's) holds everything written."""
    return data_dir() / "state"


def data_dir() -> Path:
    """Where Pistachio keeps what it makes (batch outputs); ``PISTACHIO_DATA_DIR`` overrides it."""
    override = os.environ.get("PISTACHIO_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def journal_path() -> Path:
    """The prompt journal's SQLite file."""
    return data_dir() / "journal.sqlite3"


def env_override(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable from the README's table (``RUNPOD_API_URL``…), or None when unset or blank.

    ``environ`` stands in for the process environment (what a pod would set, in tests).
    """
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def data_dir_set_to(path: Path) -> AbstractContextManager[None]:
    """Point :func:`data_dir` (and the ``PISTACHIO_DATA_DIR`` children inherit) at ``path`` for a while."""
    return environment_set_to({"PISTACHIO_DATA_DIR": str(path)})


@contextmanager
def environment_set_to(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in the environment for a while (the demo's simulated endpoints), then put back
    exactly what was there, unset names included."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_TOML_WHERE = re.compile(r"^(?P<msg>.*) \((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    return _read_toml_text(path)[1]


def _read_toml_text(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from None
    # The standard library's strict parser: the older `toml` package accepts broken
    # files, e.g. an unterminated `servers = [` silently reads as an empty list.
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}, {_toml_error_place(str(exc), text)}. "
                          "Fix that line or delete the file to start from the defaults.") from None


def _toml_error_place(message: str, text: str) -> str:
    """tomllib's ``what (at line L, column C)`` as ``line L, column C: what``."""
    match = _TOML_WHERE.match(message)
    if match is None:
        return message
    if match["line"] is not None:
        return f"line {match['line']}, column {match['col']}: {match['msg']}"
    last = max(1, len(text.splitlines()))
    return (f"line {last} (end of file): {match['msg']} — a bracket, brace or quote "
            "opened earlier is never closed")


#: The settings that name a folder on this machine.
FOLDER_KEYS = ("comfy_dir", "diffusion_pipe_dir")


def _optional_folder(data: dict[str, Any], path: Path, key: str) -> Path | None:
    value = data.get(key)
    return Path(_expect(value, str, path, key)).expanduser() if value else None


def _typed_folder(typed: str) -> Path:
    path = Path(typed).expanduser().absolute()
    if not path.is_dir():
        raise ConfigError(f"{path} is not a folder on this machine.")
    return path


#: How to get diffusion-pipe, for the messages that find none.
DIFFUSION_PIPE_CLONE = "git clone --recurse-submodules https://github.com/tdrussell/diffusion-pipe"


def is_diffusion_pipe_checkout(folder: Path) -> bool:
    """Whether ``folder`` is a diffusion-pipe checkout: it holds the trainer, ``train.py``."""
    return (folder / "train.py").is_file()


def is_comfy_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like the folder ComfyUI runs from: it holds ``models/``."""
    return (folder / "models").is_dir()


def diffusion_pipe_folder(typed: str) -> Path:
    """The diffusion-pipe checkout a person typed (``~`` expanded): a folder with ``train.py``.

    Raises ``ConfigError`` saying what it is not.
    """
    path = _typed_folder(typed)
    if not is_diffusion_pipe_checkout(path):
        raise ConfigError(f"{path} has no train.py: give the diffusion-pipe checkout ({DIFFUSION_PIPE_CLONE}).")
    return path


def comfy_folder(typed: str) -> Path:
    """The ComfyUI folder a person typed (``~`` expanded): it must be a folder that holds ``models/``.

    Raises ``ConfigError`` saying which it is not.
    """
    path = _typed_folder(typed)
    if not is_comfy_folder(path):
        raise ConfigError(f"{path} has no models folder: give the folder ComfyUI runs from (the one with main.py).")
    return path


def _expect(value: Any, kind: type | tuple[type, ...], path: Path, key: str, *, secret: bool = False) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int subclass: `gpu_interval = true` must not pass as a number.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        shown = type(value).__name__ if secret else repr(value)
        raise ConfigError(f"{path}: '{key}' must be a {names}, not {shown}.")
    return value


def _positive(value: Any, kind: type | tuple[type, ...], path: Path, key: str) -> Any:
    _expect(value, kind, path, key)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{path}: '{key}' must be a number above 0, not {value!r}.")
    return value


def _server_entry(entry: Any, path: Path, where: str) -> ServerConfig:
    _expect(entry, dict, path, where)
    if "url" not in entry:
        raise ConfigError(f"{path}: {where} has no 'url' (e.g. url = \"http://127.0.0.1:8188\").")
    url = _expect(entry["url"], str, path, f"{where}.url")
    try:
        url = check_server_url(url)
    except InvalidServerURL as exc:
        raise ConfigError(f"{path}: {where}.url: {exc}.") from None
    # Header values are usually credentials: errors name them but never echo them.
    headers = _expect(entry.get("headers", {}), dict, path, f"{where}.headers", secret=True)
    return ServerConfig(
        name=_expect(entry.get("name", url), str, path, f"{where}.name"),
        url=url,
        headers={str(k): str(_expect(v, (str, int, float), path, f"{where}.headers.{k}", secret=True))
                 for k, v in headers.items()},
    )


def _server_line(text: str, index: int, url: Any) -> int | None:
    """The line of the ``index``-th server entry: where its URL is written, else its ``[[servers]]``."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines, 1) if line.strip().startswith("[[servers]]")]
    start = headers[index] if index < len(headers) else 1
    if isinstance(url, str) and url:
        for number in range(start, len(lines) + 1):
            if f'"{url}"' in lines[number - 1] or f"'{url}'" in lines[number - 1]:
                return number
    return headers[index] if index < len(headers) else None


def _parse_servers(raw: Any, path: Path, text: str, problems: list[str]) -> list[ServerConfig]:
    """The usable servers; a broken entry is skipped with a problem naming its line, so one typo
    in one entry never keeps the app from starting."""
    servers = []
    for i, entry in enumerate(_expect(raw, list, path, "servers")):
        try:
            servers.append(_server_entry(entry, path, f"servers[{i}]"))
        except ConfigError as exc:
            line = _server_line(text, i, entry.get("url") if isinstance(entry, dict) else None)
            where = f"line {line}: " if line else ""
            problems.append(f"{where}{exc} This server was skipped; fix or remove it.")
    return servers


#: Sensible bounds of the numeric settings: a GPU poll every 0 s spins a core, a negative idle time never ends.
GPU_INTERVAL_RANGE = (0.1, 3600.0)
IDLE_MINUTES_RANGE = (1.0, 7 * 24 * 60.0)


def _in_range(value: float, path: Path, key: str, bounds: tuple[float, float], unit: str) -> float:
    """``value`` as a float if it lies within ``bounds`` (NaN never does), else a ConfigError naming the line."""
    low, high = bounds
    number = float(value)
    if low <= number <= high:
        return number
    raise ConfigError(f"{path}, {_line_of(path, key)}'{key}' = {value!r} is out of range: give "
                      f"{low:g} to {high:g} {unit}.")


def _line_of(path: Path, key: str) -> str:
    """``line N: `` for the top-level ``key = …`` line of the file, or nothing if it cannot be found."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("["):
            break
        if pattern.match(line):
            return f"line {number}: "
    return ""


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; a missing file gives the defaults."""
    path = path or config_dir() / SETTINGS_FILE
    if not path.exists():
        return Settings(path=path)
    text, data = _read_toml_text(path)
    number = (int, float)
    problems: list[str] = []
    return Settings(
        servers=_parse_servers(data.get("servers", []), path, text, problems),
        theme=_expect(data.get("theme", "pistachio"), str, path, "theme"),
        workflow_dirs=[
            Path(_expect(p, str, path, "workflow_dirs")).expanduser()
            for p in _expect(data.get("workflow_dirs", []), list, path, "workflow_dirs")
        ],
        comfy_dir=_optional_folder(data, path, "comfy_dir"),
        diffusion_pipe_dir=_optional_folder(data, path, "diffusion_pipe_dir"),
        gpu_interval=_in_range(_expect(data.get("gpu_interval", 1.0), number, path, "gpu_interval"),
                               path, "gpu_interval", GPU_INTERVAL_RANGE, "seconds"),
        idle_minutes=_in_range(_expect(data.get("idle_minutes", 30.0), number, path, "idle_minutes"),
                               path, "idle_minutes", IDLE_MINUTES_RANGE, "minutes"),
        auto_stop_idle=_expect(data.get("auto_stop_idle", False), bool, path, "auto_stop_idle"),
        journal_max_entries=_positive(data.get("journal_max_entries", 200_000), int, path, "journal_max_entries"),
        journal_keep_days=(None if data.get("journal_keep_days") is None else
                           _positive(data["journal_keep_days"], (int, float), path, "journal_keep_days")),
        path=path,
        problems=problems,
    )


def _plain(value: Any) -> Any:
    """A tomlkit value as plain Python, to compare with what the app holds."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def _set(table: Any, key: str, value: Any, default: Any = None) -> None:
    """Set ``key`` only when its value changed, so an untouched line keeps its comment and layout,
    and a default the file never named is not written into it."""
    if key in table:
        if _plain(table[key]) != value:
            table[key] = value
    elif value != default:
        table[key] = value


def _server_table(server: ServerConfig) -> tomlkit.items.Table:
    import tomlkit

    table = tomlkit.table()
    table["name"] = server.name
    table["url"] = server.url
    if server.headers:
        headers = tomlkit.inline_table()
        headers.update(server.headers)
        table["headers"] = headers
    return table


def _sync_servers(doc: Any, servers: list[ServerConfig]) -> None:
    """Make the file's servers match ``servers``: entries that did not change keep their text
    (comments included); changed ones are rewritten; removed ones go."""
    import tomlkit.items

    wanted = [{"name": s.name, "url": s.url, **({"headers": s.headers} if s.headers else {})} for s in servers]
    existing = doc.get("servers")
    old, broken = {}, []
    if isinstance(existing, tomlkit.items.AoT):
        for entry in existing:
            try:
                _server_entry(_plain(entry), Path(), "")
            except ConfigError:
                # Loading skipped it with a message; saving keeps it for the user to fix.
                broken.append(entry)
            else:
                old[_plain(entry).get("url").rstrip("/")] = entry
        if [_plain(e) for e in existing if e not in broken] == wanted:
            return
    if not servers and not broken:
        if "servers" in doc:
            del doc["servers"]
        return
    tables = tomlkit.aot()
    for server, plain in zip(servers, wanted):
        kept = old.get(server.url)
        if kept is not None:
            for key in [k for k in kept if k not in plain]:
                del kept[key]
            for key, value in plain.items():
                _set(kept, key, value)
            tables.append(kept)
        else:
            tables.append(_server_table(server))
    for entry in broken:
        tables.append(entry)
    if "servers" in doc:
        del doc["servers"]
    doc.append("servers", tables)


def save_settings(settings: Settings) -> None:
    """Write the settings into the file in place (the user's comments, order and tables survive),
    atomically, so a crash mid-write never leaves half a file."""
    # Only saving edits TOML in place: reading settings (every start) needs just tomllib.
    import tomlkit

    try:
        doc = tomlkit.parse(settings.path.read_text(encoding="utf-8")) if settings.path.exists() else tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigError(f"Cannot update {settings.path} in place ({exc}); fix or remove it first.") from None
    defaults = Settings(path=settings.path)
    _set(doc, "theme", settings.theme, defaults.theme)
    _set(doc, "gpu_interval", settings.gpu_interval, defaults.gpu_interval)
    _set(doc, "idle_minutes", settings.idle_minutes, defaults.idle_minutes)
    _set(doc, "auto_stop_idle", settings.auto_stop_idle, defaults.auto_stop_idle)
    _set(doc, "workflow_dirs", [str(p) for p in settings.workflow_dirs], [])
    _set(doc, "journal_max_entries", settings.journal_max_entries, defaults.journal_max_entries)
    if settings.journal_keep_days is not None:
        _set(doc, "journal_keep_days", settings.journal_keep_days)
    elif "journal_keep_days" in doc:
        del doc["journal_keep_days"]
    for key in FOLDER_KEYS:
        folder = getattr(settings, key)
        if folder is not None:
            _set(doc, key, str(folder))
        elif key in doc:
            del doc[key]
    _sync_servers(doc, settings.servers)
    text = tomlkit.dumps(doc)
    # Never write what the next start could not load.
    tomllib.loads(text)
    settings.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.path.with_name(settings.path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(settings.path)


def get_secret(name: str) -> str | None:
    """A secret from its env var, else from ``secrets.toml`` in the config dir.

    The file must not be readable by other users: a key that others can read is
    refused rather than silently used, because a RunPod key spends money.
    """
    value = os.environ.get(name)
    if value:
        return value
    path = config_dir() / SECRETS_FILE
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
        )
    value = _read_toml(path).get(name)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: '{name}' must be a string.")
    return value or None


def mask_secret(value: str | None) -> str:
    """A form of a secret that is safe to show: its prefix and last four characters."""
    if not value:
        return "(not set)"
    if len(value) <= 8:
        return "…" * 3
    prefix = value.split("_", 1)[0] + "_" if "_" in value[:6] else value[:2]
    return f"{prefix}…{value[-4:]}"
