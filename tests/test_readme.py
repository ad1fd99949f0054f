"""The README's set-up commands are the ones CI runs."""

import re

from linkpay import ROOT


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_set_up_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("linkpay dev")


def test_ci_runs_the_readme_test_command_word_for_word():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{_readme_commands()[1]}'" in ci


def test_example_config_documents_every_key_at_its_default():
    import tomllib

    from linkpay.config import DEFAULTS

    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    for section, keys in DEFAULTS.items():
        for key, default in keys.items():
            assert example.get(section, {}).get(key) == default, f"{section}.{key}"
