import pytest

from linkpay.config import ConfigError, load_config


def test_defaults_run_with_no_file_and_no_services():
    config = load_config(environ={})
    assert config["app.database_url"].startswith("sqlite:///")
    assert config["app.redis_url"] == ""
    assert config["sms.provider"] == "outbox"
    assert config["email.provider"] == "outbox"
    assert config["payments.gateway"] == "sandbox"
    assert config["plans.reminder_hours"] == [72, 24, 2]


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "linkpay.toml"
    path.write_text('[twilio]\nauth_token = "from-file"\n[links]\nttl_hours = 24\n')
    config = load_config(
        path,
        environ={"LINKPAY_TWILIO_AUTH_TOKEN": "from-env", "LINKPAY_PLANS_REMINDER_HOURS": "48,6"},
    )
    assert config["twilio.auth_token"] == "from-env"
    assert config["links.ttl_hours"] == 24
    assert config["plans.reminder_hours"] == [48, 6]


@pytest.mark.parametrize(
    ("environ", "named_key"),
    [
        ({"LINKPAY_LINKS_VERIFICATION": "dob"}, "links.verification"),
        ({"LINKPAY_LINKS_TTL_HOURS": "soon"}, "links.ttl_hours"),
        ({"LINKPAY_APP_TIMEZONE": "Mars/Olympus"}, "app.timezone"),
        ({"LINKPAY_COMPLIANCE_QUIET_START": "25:00"}, "compliance.quiet_start"),
        ({"LINKPAY_PLANS_REMINDER_HOURS": "72,48,24,2"}, "plans.reminder_hours"),
        ({"LINKPAY_APP_PRODUCTION": "true"}, "app.secret_key"),
        (
            {"LINKPAY_APP_PRODUCTION": "true", "LINKPAY_APP_SECRET_KEY": "k" * 32},
            "app.redis_url",
        ),
        ({"LINKPAY_SMS_PROVIDER": "twilio"}, "twilio.account_sid"),
    ],
)
def test_bad_values_stop_start_up_naming_the_key(environ, named_key):
    with pytest.raises(ConfigError, match=named_key.replace(".", r"\.")):
        load_config(environ=environ)


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / "linkpay.toml"
    path.write_text("[links]\nttl_hour = 24\n")
    with pytest.raises(ConfigError, match=r"links\.ttl_hour"):
        load_config(path, environ={})
