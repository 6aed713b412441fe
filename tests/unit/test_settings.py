from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import SECRET_KEYS, Settings, load_settings, mask_url

CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"


def test_shipped_file_equals_code_defaults() -> None:
    assert load_settings(CONFIG, environ={}) == Settings()


def test_every_key_is_documented_in_the_shipped_file() -> None:
    text = CONFIG.read_text()
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text
        assert model.annotation is not None
        for key in model.annotation.model_fields:  # type: ignore[union-attr]
            if (section, key) in SECRET_KEYS:
                assert f"LAPOR_{section.upper()}__{key.upper()}" in text
            else:
                assert f"\n{key} = " in text, f"{section}.{key} is not in config/gateway.toml"


def test_environment_overrides_file() -> None:
    env = {"LAPOR_HTTP__PORT": "9001", "LAPOR_OUTBOX__ENABLED": "false"}
    s = load_settings(CONFIG, environ=env)
    assert s.http.port == 9001
    assert s.outbox.enabled is False


def test_invalid_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"http\.port"):
        load_settings(CONFIG, environ={"LAPOR_HTTP__PORT": "seventy"})
    with pytest.raises(ConfigError, match=r"database\.url"):
        load_settings(CONFIG, environ={"LAPOR_DATABASE__URL": "mysql://x"})
    with pytest.raises(ConfigError, match=r"http\.event_loop"):
        load_settings(CONFIG, environ={"LAPOR_HTTP__EVENT_LOOP": "trio"})


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("LAPOR_DATABASE__URL", "postgresql+asyncpg://lapor@db:54x2/lapor"),
        ("LAPOR_DATABASE__URL", "postgresql+asyncpg://lapor@db:99999/lapor"),
        ("LAPOR_DATABASE__URL", "postgresql+asyncpg://lapor@[::1/lapor"),
        ("LAPOR_BROKER__URL", "amqp://guest@rabbit:56x2/"),
        ("LAPOR_BROKER__URL", "amqp://guest@[::1/"),
        # Port 0: with a password set it was dropped (connecting to 5432 instead), without one
        # every connection failed later, naming no setting.
        ("LAPOR_DATABASE__URL", "postgresql+asyncpg://lapor@db:0/lapor"),
        ("LAPOR_BROKER__URL", "amqp://guest@rabbit:0/"),
        ("LAPOR_SMS__JASMIN_SEND_URL", "http://jasmin:0/send"),
    ],
)
def test_a_url_that_cannot_be_parsed_names_the_key(name: str, url: str) -> None:
    # Refused at start, naming the key: accepted, every command later fell over with a
    # traceback ("Port could not be cast to integer value") when it built the connection.
    key = name[len("LAPOR_") :].lower().replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{key}: .*not a valid URL"):
        load_settings(CONFIG, environ={name: url})


def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for() -> None:
    import asyncio

    from gateway.bootstrap import loop_factory

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    for name in ("uvloop", "asyncio"):
        with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
            assert runner.run(which()) == name


def test_published_events_are_kept_90_days_and_a_negative_time_is_refused() -> None:
    s = load_settings(CONFIG, environ={})
    assert s.outbox.keep_published == 7_776_000 and s.outbox.prune_interval == 86_400
    assert load_settings(CONFIG, environ={"LAPOR_OUTBOX__KEEP_PUBLISHED": "0"}).outbox.keep_published == 0
    for key in ("keep_published", "prune_interval"):
        with pytest.raises(ConfigError, match=rf"outbox\.{key}: .*greater than or equal to 0"):
            load_settings(CONFIG, environ={f"LAPOR_OUTBOX__{key.upper()}": "-1"})


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"http\.prot"):
        load_settings(CONFIG, environ={"LAPOR_HTTP__PROT": "1"})
    with pytest.raises(ConfigError, match="LAPOR_NOPE"):
        load_settings(CONFIG, environ={"LAPOR_NOPE": "1"})


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "g.toml"
    f.write_text('[broker]\nurl = "amqp://u:hunter2@mq/"\n')
    with pytest.raises(ConfigError, match="LAPOR_BROKER__PASSWORD"):
        load_settings(f, environ={})
    f.write_text('[database]\npassword = "x"\n')
    with pytest.raises(ConfigError, match="LAPOR_DATABASE__PASSWORD"):
        load_settings(f, environ={})


def test_secret_from_environment_is_used_and_masked() -> None:
    s = load_settings(
        CONFIG,
        environ={
            "LAPOR_BROKER__URL": "amqp://lapor@mq:5672/vh",
            "LAPOR_BROKER__PASSWORD": "s3cr:t/",
        },
    )
    assert s.broker.effective_url() == "amqp://lapor:s3cr%3At%2F@mq:5672/vh"
    dumped = repr(s.masked())
    assert "s3cr" not in dumped
    assert "********" in dumped


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"LAPOR_CONFIG": str(tmp_path / "none.toml")})


def test_an_empty_secret_is_unset() -> None:
    s = load_settings(
        CONFIG,
        environ={
            "LAPOR_WEB__CSRF_KEY": "",
            "LAPOR_BROKER__PASSWORD": "",
            "LAPOR_SECURITY__PREVIOUS_DATA_KEYS": "",
        },
    )
    assert s.web.csrf_key is None and s.broker.password is None
    assert s.security.previous_data_keys == []
    assert s.broker.effective_url() == Settings().broker.url


def test_a_secret_that_looks_like_json_is_taken_as_it_is() -> None:
    s = load_settings(
        CONFIG,
        environ={
            "LAPOR_BROKER__PASSWORD": "{abc",
            "LAPOR_WEB__CSRF_KEY": "[not a list]",
            "LAPOR_SMS__KANNEL_TOKEN": '{"a": 1}',
        },
    )
    assert s.broker.password is not None and s.broker.password.get_secret_value() == "{abc"
    assert s.web.csrf_key is not None and s.web.csrf_key.get_secret_value() == "[not a list]"
    assert s.sms.kannel_token is not None
    assert s.sms.kannel_token.get_secret_value() == '{"a": 1}'


def test_lists_and_tables_come_as_json() -> None:
    s = load_settings(
        CONFIG,
        environ={
            "LAPOR_SECURITY__PREVIOUS_DATA_KEYS": '["b2xk"]',
            "LAPOR_SMS__REGIONS": '{"jabar": "32"}',
            "LAPOR_WEB__TRUSTED_PROXIES": '["10.0.0.0/8"]',
        },
    )
    assert [k.get_secret_value() for k in s.security.previous_data_keys] == ["b2xk"]
    assert s.sms.regions == {"jabar": "32"}
    assert [str(n) for n in s.web.trusted_proxies] == ["10.0.0.0/8"]
    with pytest.raises(ConfigError, match=r"LAPOR_SMS__REGIONS: not valid JSON.*sms\.regions"):
        load_settings(CONFIG, environ={"LAPOR_SMS__REGIONS": "{jabar"})
    with pytest.raises(ConfigError, match=r"LAPOR_WEB__TRUSTED_PROXIES: not valid JSON"):
        load_settings(CONFIG, environ={"LAPOR_WEB__TRUSTED_PROXIES": "10.0.0.0/8"})


async def test_the_tests_run_on_the_production_event_loop() -> None:
    import asyncio

    # tests/conftest.py: what the suite proves, it proves on the loop the gateway runs on.
    assert type(asyncio.get_running_loop()).__module__.split(".")[0] == "uvloop"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_server_on_this_machine_only_warns_of_nothing(host: str) -> None:
    from gateway.bootstrap import open_doors

    assert open_doors(Settings.model_validate({"http": {"host": host}})) == []


def test_a_server_reachable_from_elsewhere_without_its_secrets_says_so() -> None:
    from gateway.bootstrap import open_doors

    doors = open_doors(Settings.model_validate({"http": {"host": "0.0.0.0"}}))
    assert [d.split(" ", 1)[0] for d in doors] == ["sms.kannel_token", "http.metrics_token"]
    closed = Settings.model_validate(
        {"http": {"host": "0.0.0.0", "metrics_token": "m" * 32}, "sms": {"kannel_token": "k" * 32}}
    )
    assert open_doors(closed) == []


FLOAT_KEYS = [
    (section, key)
    for section, model in Settings.model_fields.items()
    for key, field in model.annotation.model_fields.items()  # type: ignore[union-attr]
    if field.annotation is float
]


def test_every_float_setting_is_checked_for_infinity() -> None:
    # The timeouts, intervals and windows below are all floats; none may be left out.
    assert ("database", "connect_timeout") in FLOAT_KEYS and len(FLOAT_KEYS) > 30


@pytest.mark.parametrize(("section", "key"), FLOAT_KEYS)
@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "Infinity"])
def test_an_infinite_or_nan_time_from_the_environment_names_the_key(
    section: str, key: str, raw: str
) -> None:
    # "inf" was accepted: a connect timeout that never ends, a prune that never comes, a
    # back-off that sleeps for ever; "nan" was refused as "greater than 0", or taken.
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: .*finite number"):
        load_settings(CONFIG, environ={f"LAPOR_{section.upper()}__{key.upper()}": raw})


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_an_infinite_or_nan_time_in_the_file_names_the_key(tmp_path: Path, value: str) -> None:
    f = tmp_path / "g.toml"
    f.write_text(f"[database]\nconnect_timeout = {value}\n[outbox]\nkeep_published = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(f, environ={})
    assert "database.connect_timeout: Input should be a finite number" in str(exc.value)
    assert "outbox.keep_published: Input should be a finite number" in str(exc.value)


@pytest.mark.parametrize(
    "name",
    ["LAPOR_STORAGE__FILE_STORE", "LAPOR_SECURITY__GENERATED_KEYS_DIR", "LAPOR_HTTP__HOST"],
)
@pytest.mark.parametrize("raw", ["", "  "])
def test_an_empty_path_or_host_names_the_key(name: str, raw: str) -> None:
    # An empty file_store was read as "." (attachments written into the working directory), an
    # empty generated_keys_dir the same, and an empty http.host listens on every interface.
    key = name[len("LAPOR_") :].lower().replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{key}: .*must not be empty"):
        load_settings(CONFIG, environ={name: raw})


def test_an_empty_path_in_the_file_names_the_key(tmp_path: Path) -> None:
    f = tmp_path / "g.toml"
    f.write_text('[storage]\nfile_store = ""\n')
    with pytest.raises(ConfigError, match=r"storage\.file_store: .*must not be empty"):
        load_settings(f, environ={})


def test_a_section_that_is_not_a_table_names_the_key(tmp_path: Path) -> None:
    # "database = ..." at the top of the file instead of "[database]": an AttributeError
    # traceback, not a message naming the key.
    f = tmp_path / "g.toml"
    f.write_text('database = "postgresql+asyncpg://lapor@db/lapor"\n')
    with pytest.raises(ConfigError, match=r"database: "):
        load_settings(f, environ={})


@pytest.mark.parametrize("section", ["letter", "web"])
def test_a_password_in_the_public_base_url_is_refused(section: str) -> None:
    # It was accepted, printed by check-config and put into every receipt's QR code (letter)
    # or sent to every Open311 partner (web).
    env = {f"LAPOR_{section.upper()}__PUBLIC_BASE_URL": "https://admin:s3cret@lapor.example.go.id"}
    with pytest.raises(ConfigError, match=rf"{section}\.public_base_url: ") as exc:
        load_settings(CONFIG, environ=env)
    assert "s3cret" not in str(exc.value)


def test_the_web_public_base_url_is_optional_and_kept_without_its_final_slash() -> None:
    assert load_settings(CONFIG, environ={}).web.public_base_url is None
    env = {"LAPOR_WEB__PUBLIC_BASE_URL": "https://lapor.example.go.id/"}
    assert load_settings(CONFIG, environ=env).web.public_base_url == "https://lapor.example.go.id"


def test_a_config_file_that_cannot_be_read_names_it(tmp_path: Path) -> None:
    # LAPOR_CONFIG naming a directory (a volume mounted in the wrong place): IsADirectoryError
    # with a traceback, not a message naming the setting.
    with pytest.raises(ConfigError, match=r"LAPOR_CONFIG: .* cannot be read"):
        load_settings(environ={"LAPOR_CONFIG": str(tmp_path)})


def test_a_gc_grace_shorter_than_the_csrf_max_age_is_refused_at_start() -> None:
    # A refused form keeps its attachments while its token lives (web.csrf_max_age): a shorter
    # grace would let the file gc delete them before the citizen sends the form again.
    with pytest.raises(ConfigError, match=r"storage\.gc_grace .*web\.csrf_max_age") as info:
        load_settings(CONFIG, environ={"LAPOR_STORAGE__GC_GRACE": "3600"})
    assert ": :" not in str(info.value) and "Value error" not in str(info.value)
    with pytest.raises(ConfigError, match=r"storage\.gc_grace .*web\.csrf_max_age"):
        load_settings(CONFIG, environ={"LAPOR_WEB__CSRF_MAX_AGE": "90000"})
    s = load_settings(
        CONFIG, environ={"LAPOR_STORAGE__GC_GRACE": "3600", "LAPOR_WEB__CSRF_MAX_AGE": "3600"}
    )
    assert s.storage.gc_grace == s.web.csrf_max_age == 3600


@pytest.mark.parametrize(
    ("name", "url", "secret"),
    [
        (
            "LAPOR_SMS__KANNEL_SENDSMS_URL",
            "http://kannel:13013/cgi-bin/sendsms?username=lapor&password=hunter2",
            "hunter2",
        ),
        ("LAPOR_SMS__JASMIN_SEND_URL", "http://jasmin:1401/send?token=t0k3n-j", "t0k3n-j"),
        ("LAPOR_SMS__CALLBACK_URL", "http://gw:8080?api_key=k3y-callback", "k3y-callback"),
        ("LAPOR_SMS__ANDROID_SEND_URL", "https://sms-gate.example/v1/messages?Pass=abc9", "abc9"),
        (
            "LAPOR_DATABASE__URL",
            "postgresql+asyncpg://lapor@db:5432/lapor?password=pg-s3cret&ssl=require",
            "pg-s3cret",
        ),
        ("LAPOR_DATABASE__URL", "postgresql+asyncpg://lapor:pg-s3cret@db:5432/lapor", "pg-s3cret"),
        ("LAPOR_BROKER__URL", "amqp://lapor:mq-s3cret@[::1]:5672/vh", "mq-s3cret"),
    ],
)
def test_a_secret_inside_a_url_from_the_environment_is_masked(
    name: str, url: str, secret: str
) -> None:
    # check-config printed a password or token in a URL's query string (a Kannel sendsms URL
    # written with password=, asyncpg's ?password=) in clear: only the user info of the
    # database and broker URLs was masked, and the SMS bridges' URLs not at all.
    masked = load_settings(CONFIG, environ={name: url}).masked()
    assert secret not in repr(masked)
    section, key = name[len("LAPOR_") :].lower().split("__")
    # Only the secret is masked; the rest is shown as written.
    assert masked[section][key] == url.replace(secret, "********")


def test_a_url_without_secrets_is_shown_as_written() -> None:
    env = {
        "LAPOR_SMS__KANNEL_SENDSMS_URL": "http://kannel:13013/cgi-bin/sendsms?smsc=tsel&x=1",
        "LAPOR_DATABASE__URL": "postgresql+asyncpg://lapor@db:5432/lapor?sslkey=/etc/c.key",
    }
    masked = load_settings(CONFIG, environ=env).masked()
    assert masked["sms"]["kannel_sendsms_url"] == env["LAPOR_SMS__KANNEL_SENDSMS_URL"]
    assert masked["database"]["url"] == env["LAPOR_DATABASE__URL"]


@pytest.mark.parametrize(
    ("section", "key", "url"),
    [
        ("sms", "kannel_sendsms_url", "http://kannel:13013/cgi-bin/sendsms?password=hunter2"),
        ("sms", "jasmin_send_url", "http://jasmin:1401/send?username=lapor&token=hunter2"),
        ("database", "url", "postgresql+asyncpg://lapor@db/lapor?password=hunter2"),
    ],
)
def test_a_secret_in_a_url_query_in_the_file_is_refused(
    tmp_path: Path, section: str, key: str, url: str
) -> None:
    # "A secret or a password inside a URL in this file stops the gateway at start": a
    # password in the query string was taken, and printed by check-config.
    f = tmp_path / "g.toml"
    f.write_text(f'[{section}]\n{key} = "{url}"\n')
    with pytest.raises(ConfigError, match=rf"{section}\.{key} in .*: remove .*from the URL") as exc:
        load_settings(f, environ={})
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("name", ["LAPOR_HTTP__PORT", "LAPOR_OUTBOX__RELAY_PORT"])
def test_port_zero_is_refused_naming_the_key(name: str, tmp_path: Path) -> None:
    # http.port = 0 was accepted: the server listened on a port the system picked, one no load
    # balancer, probe or Prometheus job knows, and said nothing.
    key = name[len("LAPOR_") :].lower().replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{key}: .*greater than or equal to 1"):
        load_settings(CONFIG, environ={name: "0"})
    f = tmp_path / "g.toml"
    section, field = key.split(".")
    f.write_text(f"[{section}]\n{field} = 0\n")
    with pytest.raises(ConfigError, match=rf"{key}: "):
        load_settings(f, environ={})


def test_a_password_with_an_ipv6_database_or_broker_host_keeps_the_brackets() -> None:
    # The host was rebuilt from ``hostname`` (no brackets): "lapor:pw@::1:5432" could not be
    # parsed, and every command ended in a ValueError traceback.
    from sqlalchemy.engine import make_url

    s = load_settings(
        CONFIG,
        environ={
            "LAPOR_DATABASE__URL": "postgresql+asyncpg://lapor@[::1]:5433/lapor",
            "LAPOR_DATABASE__PASSWORD": "p@ss:w/d",
            "LAPOR_BROKER__URL": "amqp://lapor@[fd00::2]/vh",
            "LAPOR_BROKER__PASSWORD": "pw",
        },
    )
    url = make_url(s.database.effective_url())
    assert (url.host, url.port, url.username, url.password) == ("::1", 5433, "lapor", "p@ss:w/d")
    assert s.broker.effective_url() == "amqp://lapor:pw@[fd00::2]/vh"


@pytest.mark.parametrize(
    "name",
    [
        "LAPOR_SMS__KANNEL_SENDSMS_URL",
        "LAPOR_SMS__JASMIN_SEND_URL",
        "LAPOR_SMS__ANDROID_SEND_URL",
        "LAPOR_SMS__CALLBACK_URL",
        "LAPOR_LETTER__PUBLIC_BASE_URL",
        "LAPOR_WEB__PUBLIC_BASE_URL",
    ],
)
def test_an_http_url_whose_port_is_not_a_number_names_the_key(name: str) -> None:
    # Accepted, then every reply failed at send time ("port can't be converted to integer").
    key = name[len("LAPOR_") :].lower().replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{key}: .*not a valid URL"):
        load_settings(CONFIG, environ={name: "http://kannel:13x13/cgi-bin/sendsms"})


def test_an_environment_variable_with_a_typo_is_named_as_written() -> None:
    # The message named "http.prot" only, a key the operator looks for in the file in vain:
    # it names the variable now, so the typo is found where it was made.
    with pytest.raises(ConfigError, match=r"^LAPOR_HTTP__PROT: unknown setting http\.prot"):
        load_settings(CONFIG, environ={"LAPOR_HTTP__PROT": "9000"})
    with pytest.raises(ConfigError, match=r"^LAPOR_SMS__JASMIN_TOKN: unknown setting"):
        load_settings(CONFIG, environ={"LAPOR_SMS__JASMIN_TOKN": "x"})


def test_an_unknown_key_in_the_file_says_unknown_setting(tmp_path: Path) -> None:
    f = tmp_path / "g.toml"
    f.write_text("[outbox]\nbatch_sise = 100\n[htttp]\nport = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(f, environ={})
    assert "outbox.batch_sise: unknown setting" in str(exc.value)
    assert "htttp: unknown setting" in str(exc.value)


@pytest.mark.parametrize(
    "host", ["0.0.0.0:8080", "http://0.0.0.0", "[::1]", "lapor.example.go.id/", "10.0.0.1 "]
)
def test_an_http_host_with_a_port_or_a_scheme_names_the_key(host: str) -> None:
    # Taken, serve stopped on "[Errno -2] Name or service not known", naming no setting.
    with pytest.raises(ConfigError, match=r"http\.host: .*host name or an IP address"):
        load_settings(CONFIG, environ={"LAPOR_HTTP__HOST": host})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "fd00::1", "localhost", "gateway-1"])
def test_an_http_host_that_is_an_address_or_a_name_is_taken(host: str) -> None:
    assert load_settings(CONFIG, environ={"LAPOR_HTTP__HOST": host}).http.host == host


def test_an_invalid_value_from_the_environment_names_its_variable(tmp_path: Path) -> None:
    # "http.port: Input should be a valid integer" sent the operator to the file, where
    # port = 8080 is right: the value came from a variable, which the message now names.
    with pytest.raises(ConfigError) as exc:
        load_settings(CONFIG, environ={"LAPOR_HTTP__PORT": "80a"})
    assert str(exc.value).startswith("invalid settings: http.port: Input should be")
    assert str(exc.value).endswith(" (set by LAPOR_HTTP__PORT)")
    # From the file: no variable named.
    f = tmp_path / "g.toml"
    f.write_text('[http]\nport = "80a"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(f, environ={})
    assert "http.port: Input should be" in str(exc.value) and "set by" not in str(exc.value)


@pytest.mark.parametrize("code", ["17 08", " 1708", "1708\n", "１７０８", "1708-1", "+1708", "", "1234567890123"])
def test_an_sms_short_code_that_is_not_ascii_letters_or_digits_names_the_key(
    code: str, tmp_path: Path
) -> None:
    # Taken as it was: the replies quietly cleaned it ("17 08" told citizens to text 1708, a
    # full-width "１７０８" became the default 1708), and the sender number kept it as written.
    with pytest.raises(ConfigError, match=r"sms\.short_code: .*ASCII letters or digits") as exc:
        load_settings(CONFIG, environ={"LAPOR_SMS__SHORT_CODE": code})
    assert str(exc.value).endswith("(set by LAPOR_SMS__SHORT_CODE)")
    f = tmp_path / "g.toml"
    f.write_text(f"[sms]\nshort_code = {code!r}\n".replace("'", '"'))
    with pytest.raises(ConfigError, match=r"sms\.short_code: "):
        load_settings(f, environ={})


@pytest.mark.parametrize("code", ["1708", "9", "LAPOR", "lapor1708", "123456789012"])
def test_an_sms_short_code_of_letters_and_digits_is_taken(code: str) -> None:
    assert load_settings(CONFIG, environ={"LAPOR_SMS__SHORT_CODE": code}).sms.short_code == code


@pytest.mark.parametrize(
    ("regions", "command"),
    [
        ({"INFO": "32"}, "INFO"),
        ({"JABAR": "32", "cek": "33"}, "CEK"),
        ({"Status": "31"}, "STATUS"),
        ({"BANTUAN": "31"}, "BANTUAN"),
        ({"help": "31"}, "HELP"),
        ({"NIK": "32"}, "NIK"),
        ({"ktp": "32"}, "KTP"),
        ({"RAHASIA": "32"}, "RAHASIA"),
        ({"Anonim": "32"}, "ANONIM"),
        ({"JABAR INFO": "32"}, "INFO"),  # a word of a keyword of several
        ({"cek-status": "32"}, "CEK"),  # read as the grammar reads it: CEK STATUS
    ],
)
def test_a_region_keyword_that_is_an_sms_command_names_the_key(
    regions: dict[str, str], command: str, tmp_path: Path
) -> None:
    # A region keyword is read before the commands: "INFO" as a region made every INFO a
    # complaint from that region, "RAHASIA" dropped the confidential flag, "NIK" the NIK.
    import json

    with pytest.raises(ConfigError, match=rf"sms\.regions: .*the SMS command {command}\b"):
        load_settings(CONFIG, environ={"LAPOR_SMS__REGIONS": json.dumps(regions)})
    f = tmp_path / "g.toml"
    table = ", ".join(f'"{k}" = "{v}"' for k, v in regions.items())
    f.write_text(f"[sms]\nregions = {{ {table} }}\n")
    with pytest.raises(ConfigError, match=rf"sms\.regions: .*{command}"):
        load_settings(f, environ={})


def test_a_region_keyword_without_a_word_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sms\.regions: .*'--' has no letter or digit"):
        load_settings(CONFIG, environ={"LAPOR_SMS__REGIONS": '{"JABAR": "32", "--": "33"}'})


def test_the_region_keywords_refused_are_exactly_the_grammar_s_commands() -> None:
    # Every command the grammar reads is refused as a region keyword, and the grammar does read
    # each of them as a command (a new command word cannot be left out of the check).
    import json

    from channels.sms import grammar
    from channels.sms.settings import DEFAULT_REGIONS

    for word in grammar.COMMAND_WORDS:
        with pytest.raises(ConfigError, match=r"sms\.regions: "):
            load_settings(CONFIG, environ={"LAPOR_SMS__REGIONS": json.dumps({word: "32"})})
    nik = "3201015505900003"  # a valid NIK (region 32.01, 15-05-1990, a woman)
    for label in grammar.NIK_LABELS:
        found = grammar.interpret(f"{label} {nik} jalan rusak parah", "+6281200000001", {})
        assert found.draft is not None and found.draft.reporter.nik == nik, label
    assert grammar.interpret("INFO", "x", {}).intent is grammar.Intent.HELP
    # The shipped table holds no command, and a table of real keywords is taken.
    assert not any(
        set(grammar.keyword_words(k)) & grammar.COMMAND_WORDS for k in DEFAULT_REGIONS
    )
    s = load_settings(CONFIG, environ={"LAPOR_SMS__REGIONS": '{"TANGKAB": "36.03", "Papua Barat": "92"}'})
    assert s.sms.regions == {"TANGKAB": "36.03", "Papua Barat": "92"}


BACKOFF_PAIRS = [
    (section, key, key.removesuffix("initial") + "max")
    for section, model in Settings.model_fields.items()
    for key in model.annotation.model_fields  # type: ignore[union-attr]
    if key.endswith("backoff_initial")
]


def test_every_backoff_pair_is_checked() -> None:
    assert [(s, k) for s, k, _ in BACKOFF_PAIRS] == [
        ("outbox", "backoff_initial"),
        ("status_feed", "backoff_initial"),
        ("sms", "sender_backoff_initial"),
    ]


@pytest.mark.parametrize(("section", "start", "ceiling"), BACKOFF_PAIRS)
def test_a_backoff_that_starts_above_its_ceiling_names_both_keys(
    section: str, start: str, ceiling: str
) -> None:
    # Taken: the first pause after a failure was longer than the longest one the operator set.
    env = {
        f"LAPOR_{section.upper()}__{start.upper()}": "60",
        f"LAPOR_{section.upper()}__{ceiling.upper()}": "30",
    }
    with pytest.raises(ConfigError) as exc:
        load_settings(CONFIG, environ=env)
    assert str(exc.value) == (
        f"invalid settings: {section}.{start} (60 s) is greater than {section}.{ceiling}"
        f" (30 s): the back-off would start above its ceiling; lower {section}.{start} or"
        f" raise {section}.{ceiling}"
    )
    equal = {**env, f"LAPOR_{section.upper()}__{ceiling.upper()}": "60"}
    s = load_settings(CONFIG, environ=equal)
    assert getattr(getattr(s, section), start) == getattr(getattr(s, section), ceiling) == 60


def test_every_backoff_above_its_ceiling_is_named_at_once() -> None:
    env = {"LAPOR_OUTBOX__BACKOFF_INITIAL": "31", "LAPOR_SMS__SENDER_BACKOFF_INITIAL": "301"}
    with pytest.raises(ConfigError) as exc:
        load_settings(CONFIG, environ=env)
    assert "outbox.backoff_initial (31 s)" in str(exc.value)
    assert "sms.sender_backoff_initial (301 s)" in str(exc.value)


@pytest.mark.parametrize("region", ["XX", "12", "I", "IDN", ""])
def test_an_sms_default_region_libphonenumber_does_not_know_names_the_key(region: str) -> None:
    # Any two characters were taken, and every sender number written without "+" was then
    # filed with no phone number.
    with pytest.raises(ConfigError, match=r"sms\.default_region: .*LAPOR_SMS__DEFAULT_REGION"):
        load_settings(CONFIG, environ={"LAPOR_SMS__DEFAULT_REGION": region})


@pytest.mark.parametrize(("region", "taken"), [("id", "ID"), ("ID", "ID"), ("my", "MY")])
def test_an_sms_default_region_is_taken_in_upper_case(region: str, taken: str) -> None:
    s = load_settings(CONFIG, environ={"LAPOR_SMS__DEFAULT_REGION": region})
    assert s.sms.default_region == taken


def test_a_send_timeout_over_half_the_reply_lease_is_refused_at_start() -> None:
    # Taken, a slow bridge's reply could still be in flight when its lease ended, and another
    # sender would send it again: the citizen texted twice (the runbook's warning).
    env = {"LAPOR_SMS__SEND_TIMEOUT": "31", "LAPOR_SMS__SENDER_CLAIM_TIMEOUT": "60"}
    with pytest.raises(ConfigError, match=r"sms\.send_timeout \(31 s\) .*sms\.sender_claim_timeout"):
        load_settings(CONFIG, environ=env)
    fits = load_settings(CONFIG, environ={**env, "LAPOR_SMS__SEND_TIMEOUT": "30"})
    assert fits.sms.send_timeout == 30


def test_a_masked_sqlite_url_keeps_its_path() -> None:
    # Its empty host was written away with the secret query's mask: a path of four slashes
    # (an absolute file) was shown as a relative one under a host "var".
    assert mask_url("sqlite+aiosqlite:////var/lib/lapor.db?password=rahasia") == (
        "sqlite+aiosqlite:////var/lib/lapor.db?password=********"
    )
    assert mask_url("sqlite+aiosqlite:///var/lapor.db?x=1&password=r#f") == (
        "sqlite+aiosqlite:///var/lapor.db?x=1&password=********#f"
    )
