import os
import stat
from pathlib import Path

import pytest

from pistachio_tui.config import (
    ConfigError,
    InvalidServerURL,
    ServerConfig,
    Settings,
    check_server_url,
    config_dir,
    data_dir,
    data_dir_set_to,
    env_override,
    get_secret,
    load_settings,
    mask_secret,
    save_settings,
)


def test_missing_file_gives_defaults():
    settings = load_settings()
    assert settings.servers == []
    assert settings.theme == "pistachio"
    assert settings.path == config_dir() / "settings.toml"


def test_round_trip(tmp_path):
    path = tmp_path / "s.toml"
    settings = Settings(
        servers=[ServerConfig("pod", "https://abc-8188.proxy.runpod.net/", {"Authorization": "Bearer x"})],
        theme="nord",
        workflow_dirs=[tmp_path / "wf"],
        comfy_dir=tmp_path / "ComfyUI",
        gpu_interval=0.5,
        path=path,
    )
    save_settings(settings)
    loaded = load_settings(path)
    assert loaded == settings
    assert loaded.servers[0].url == "https://abc-8188.proxy.runpod.net"
    assert loaded.server("pod") is loaded.servers[0]
    assert loaded.server("https://abc-8188.proxy.runpod.net/") is loaded.servers[0]


def test_broken_toml_names_the_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('theme = "x"\n[[servers]]\nurl = "http://a\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert "line 3" in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("gpu_interval = true\n", "'gpu_interval' must be"),
        ('servers = "x"\n', "'servers' must be a list"),
    ],
)
def test_wrong_values_are_named(tmp_path, text, fragment):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(path)


def test_secret_from_env_wins(monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_FROMENV")
    assert get_secret("RUNPOD_API_KEY") == "rpa_FROMENV"


def test_secret_from_private_file():
    path = config_dir() / "secrets.toml"
    path.write_text('HF_TOKEN = "hf_abcdefgh1234"\n')
    os.chmod(path, 0o600)
    assert get_secret("HF_TOKEN") == "hf_abcdefgh1234"
    assert get_secret("RUNPOD_API_KEY") is None


def test_secret_file_readable_by_others_is_refused():
    path = config_dir() / "secrets.toml"
    path.write_text('HF_TOKEN = "hf_abcdefgh1234"\n')
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        get_secret("HF_TOKEN")
    assert "hf_abcdefgh1234" not in str(err.value)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_mask_secret_hides_the_middle():
    assert mask_secret(None) == "(not set)"
    assert mask_secret("rpa_ABCDEFGHIJKL9f3a") == "rpa_…9f3a"
    assert "SECRET" not in mask_secret("hf_SECRETSECRET1234")
    assert mask_secret("short") == "………"


def test_unterminated_array_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('theme = "nord"\nservers = [\n  {name = "a", url = "http://127.0.0.1:8188"},\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert "line 3 (end of file)" in str(err.value)


def test_proxy_credentials_stay_out_of_reprs_and_errors(tmp_path):
    server = ServerConfig("pod", "https://me:PW-SECRET@pod.example", {"Authorization": "Bearer HDR-SECRET"})
    shown = repr(server) + repr(Settings(servers=[server]))
    assert "SECRET" not in shown
    assert "Authorization" in shown and "me:…@pod.example" in shown
    path = tmp_path / "s.toml"
    for text in ('[[servers]]\nurl = "http://a"\nheaders = "Bearer HDR-SECRET"\n',
                 '[[servers]]\nurl = "http://a"\nheaders = {Authorization = ["Bearer HDR-SECRET"]}\n',
                 '[[servers]]\nurl = "ftp://me:PW-SECRET@a"\n'):
        path.write_text(text)
        [problem] = load_settings(path).problems
        assert "SECRET" not in problem and str(path) in problem


def test_a_broken_secrets_file_is_named_without_its_values():
    path = config_dir() / "secrets.toml"
    path.write_text('RUNPOD_API_KEY = "rpa_KEY-SECRET-123\nHF_TOKEN = hf_TOKEN-SECRET-456\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as err:
        get_secret("HF_TOKEN")
    assert str(path) in str(err.value) and "line 1" in str(err.value)
    assert "SECRET" not in str(err.value)


def test_saved_settings_load_back_whatever_the_strings_hold(tmp_path):
    odd = ["C:\\x64\\ComfyUI", "C:\\Users\\x", "tab\tand \x01 control", "del\x7f", 'quote " and \\ backslash', "é ✓"]
    settings = Settings(
        servers=[ServerConfig(name, f"http://127.0.0.1:{8188 + i}", {"X-Note": name}) for i, name in enumerate(odd)],
        workflow_dirs=[Path(name) for name in odd], comfy_dir=Path(odd[0]), path=tmp_path / "s.toml")
    save_settings(settings)
    assert load_settings(settings.path) == settings


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ('name = "x"', "has no 'url'"),
        ('url = "localhost:8188"', "must start with http"),
        ('url = "http://[::1"', "not a valid URL"),
        ('url = "http://"', "names no host"),
        ('url = "http://127.0.0.1:81888"', "not a valid URL"),
        ('url = "http://localhost:abc"', "not a valid URL"),
    ],
)
def test_a_broken_server_entry_is_skipped_with_its_line_and_the_rest_loads(tmp_path, entry, fragment):
    path = tmp_path / "s.toml"
    path.write_text('theme = "nord"\n\n[[servers]]\nname = "good"\nurl = "http://127.0.0.1:8188"\n\n'
                    f'[[servers]]\n{entry}\n')
    settings = load_settings(path)
    assert [s.name for s in settings.servers] == ["good"]
    assert settings.theme == "nord"
    [problem] = settings.problems
    assert fragment in problem and "skipped" in problem
    assert "line 8" in problem or "line 7" in problem


@pytest.mark.parametrize("url", ["http://[::1", "http://", "http:", "http://h:81888", "http://h:0", "localhost:8188",
                                 "http://localhost:abc", "ftp://h", "http://h/?x=1"])
def test_check_server_url_refuses_what_could_not_be_loaded_or_reached(url):
    with pytest.raises(InvalidServerURL):
        check_server_url(url)


@pytest.mark.parametrize("url, stored", [("http://127.0.0.1:8188/", "http://127.0.0.1:8188"),
                                         ("https://abc-8188.proxy.runpod.net", "https://abc-8188.proxy.runpod.net"),
                                         ("http://[::1]:8188", "http://[::1]:8188"),
                                         ("http://host/comfy/", "http://host/comfy")])
def test_check_server_url_keeps_good_urls(url, stored):
    assert check_server_url(url) == stored


HAND_WRITTEN = """\
# My Pistachio settings — written by hand.
theme = "pistachio"   # the default theme
gpu_interval = 2.0

# The big box under the desk.
[[servers]]
name = "local"
url = "http://127.0.0.1:8188"   # ComfyUI's default port

[[servers]]
name = "pod"
url = "https://abc-8188.proxy.runpod.net"
headers = { Authorization = "Bearer x" }
"""


def test_saving_keeps_the_users_comments_order_and_tables(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HAND_WRITTEN)
    settings = load_settings(path)
    settings.theme = "nord"
    settings.servers.append(ServerConfig("lan", "http://192.0.2.7:8188"))
    save_settings(settings)
    text = path.read_text()
    for kept in ("# My Pistachio settings — written by hand.", "# The big box under the desk.",
                 "# ComfyUI's default port", "gpu_interval = 2.0\n", 'headers = { Authorization = "Bearer x" }'):
        assert kept in text
    assert 'theme = "nord"' in text and text.count("[[servers]]") == 3
    assert text.index('name = "local"') < text.index('name = "pod"') < text.index('name = "lan"')
    assert load_settings(path).servers == settings.servers


def test_removing_a_server_keeps_the_others_text(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HAND_WRITTEN)
    settings = load_settings(path)
    settings.servers = [s for s in settings.servers if s.name != "pod"]
    save_settings(settings)
    text = path.read_text()
    assert "# ComfyUI's default port" in text and "proxy.runpod.net" not in text
    assert load_settings(path).servers == settings.servers


def test_an_unchanged_save_rewrites_nothing(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HAND_WRITTEN)
    save_settings(load_settings(path))
    assert path.read_text() == HAND_WRITTEN


def test_a_new_setting_lands_above_the_server_tables(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HAND_WRITTEN)
    settings = load_settings(path)
    settings.comfy_dir = tmp_path / "ComfyUI"
    settings.workflow_dirs = [tmp_path / "wf"]
    save_settings(settings)
    assert load_settings(path) == settings
    text = path.read_text()
    assert text.index("comfy_dir") < text.index("[[servers]]")


def test_saving_keeps_a_broken_entry_for_the_user_to_fix(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HAND_WRITTEN + '\n[[servers]]\nname = "typo"\nurl = "http://[::1"\n')
    settings = load_settings(path)
    assert len(settings.problems) == 1
    settings.servers.append(ServerConfig("lan", "http://192.0.2.7:8188"))
    save_settings(settings)
    again = load_settings(path)
    assert again.servers == settings.servers and len(again.problems) == 1


def test_env_override_treats_blank_as_unset_and_reads_a_given_environment():
    assert env_override("RUNPOD_POD_ID", {"RUNPOD_POD_ID": "  abc123 "}) == "abc123"
    assert env_override("RUNPOD_POD_ID", {"RUNPOD_POD_ID": "   "}) is None
    assert env_override("RUNPOD_POD_ID", {}) is None


def test_data_dir_set_to_restores_the_previous_value(tmp_path, monkeypatch):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "before"))
    with data_dir_set_to(tmp_path / "scratch"):
        assert data_dir() == tmp_path / "scratch"
    assert data_dir() == tmp_path / "before"
    monkeypatch.delenv("PISTACHIO_DATA_DIR")
    with data_dir_set_to(tmp_path / "scratch"):
        assert data_dir() == tmp_path / "scratch"
    assert "PISTACHIO_DATA_DIR" not in os.environ


def test_a_comfy_folder_must_be_a_folder_with_models(tmp_path, monkeypatch):
    from pistachio_tui.config import comfy_folder

    with pytest.raises(ConfigError, match="is not a folder on this machine"):
        comfy_folder(str(tmp_path / "nowhere"))
    (tmp_path / "ComfyUI").mkdir()
    with pytest.raises(ConfigError, match="has no models folder: give the folder ComfyUI runs from"):
        comfy_folder(str(tmp_path / "ComfyUI"))
    (tmp_path / "ComfyUI" / "models").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert comfy_folder("~/ComfyUI") == tmp_path / "ComfyUI"
    monkeypatch.chdir(tmp_path)
    assert comfy_folder("ComfyUI") == tmp_path / "ComfyUI"


def test_a_diffusion_pipe_folder_must_hold_train_py(tmp_path):
    from pistachio_tui.config import diffusion_pipe_folder

    with pytest.raises(ConfigError, match="is not a folder on this machine"):
        diffusion_pipe_folder(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="has no train.py: give the diffusion-pipe checkout"):
        diffusion_pipe_folder(str(tmp_path))
    (tmp_path / "train.py").write_text("")
    assert diffusion_pipe_folder(str(tmp_path)) == tmp_path


def test_the_folder_settings_round_trip_and_go_when_unset(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# mine\n")
    settings = load_settings(path)
    settings.comfy_dir, settings.diffusion_pipe_dir = tmp_path / "ComfyUI", tmp_path / "diffusion-pipe"
    save_settings(settings)
    loaded = load_settings(path)
    assert (loaded.comfy_dir, loaded.diffusion_pipe_dir) == (tmp_path / "ComfyUI", tmp_path / "diffusion-pipe")
    loaded.diffusion_pipe_dir = None
    save_settings(loaded)
    assert "diffusion_pipe_dir" not in path.read_text() and path.read_text().startswith("# mine\n")
