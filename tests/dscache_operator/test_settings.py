"""Operator settings: one model of defaults; every flag also a DSCACHE_OPERATOR_* variable; bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from dscache.api.podsettings import EnvFromSource, EnvVar, LocalObjectReference, ObjectSource, Toleration
from dscache_operator.cli import build_parser
from dscache_operator.settings import (
    OPTIONS,
    InstallerDefaults,
    Settings,
    SettingsError,
    WebhookSettings,
    load,
)

# Every variable with a valid non-default text, and the field path and typed value it must produce.
EVERY_VARIABLE: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "DSCACHE_OPERATOR_IMAGE": ("registry.example/dscache:9", ("image",), "registry.example/dscache:9"),
    "DSCACHE_OPERATOR_PREPARE_IMAGE": (
        "registry.example/dscache:9-prepare",
        ("prepare_image",),
        "registry.example/dscache:9-prepare",
    ),
    "DSCACHE_OPERATOR_IMAGE_PULL_POLICY": ("Always", ("image_pull_policy",), "Always"),
    "DSCACHE_OPERATOR_RUN_AS_USER": ("1000680000", ("run_as_user",), 1000680000),
    "DSCACHE_OPERATOR_INSTALLER_API_URL": ("https://api:6443", ("installer_api_url",), "https://api:6443"),
    "DSCACHE_OPERATOR_NAMESPACE": ("team-a, team-b", ("namespaces",), ("team-a", "team-b")),
    "DSCACHE_OPERATOR_PEERING": ("ml-dscache", ("peering_name",), "ml-dscache"),
    "DSCACHE_OPERATOR_PRIORITY": ("7", ("priority",), 7),
    "DSCACHE_OPERATOR_STANDALONE": ("1", ("standalone",), True),
    "DSCACHE_OPERATOR_LIVENESS": ("", ("liveness_url",), None),
    "DSCACHE_OPERATOR_METRICS_PORT": ("0", ("metrics_port",), 0),
    "DSCACHE_OPERATOR_PREPARE_WAIT": ("90.5", ("prepare_wait",), 90.5),
    "DSCACHE_OPERATOR_PREPARE_RESOURCES": (
        '{"limits": {"cpu": 1, "memory": "2Gi"}}',
        ("prepare_resources",),
        {"limits": {"cpu": "1", "memory": "2Gi"}},
    ),
    "DSCACHE_OPERATOR_SCRATCH_HOST_PATH": (
        "/mnt/nvme/dscache, /scratch",
        ("scratch_host_paths",),
        ("/mnt/nvme/dscache", "/scratch"),
    ),
    "DSCACHE_OPERATOR_VERBOSE": ("true", ("verbose",), True),
    "DSCACHE_OPERATOR_WEBHOOK_CERT": ("/certs/tls.crt", ("webhook", "cert"), "/certs/tls.crt"),
    "DSCACHE_OPERATOR_WEBHOOK_KEY": ("/certs/tls.key", ("webhook", "key"), "/certs/tls.key"),
    "DSCACHE_OPERATOR_WEBHOOK_DEV": ("1", ("webhook", "dev"), True),
    "DSCACHE_OPERATOR_WEBHOOK_PORT": ("8443", ("webhook", "port"), 8443),
    "DSCACHE_OPERATOR_WEBHOOK_ADDR": ("127.0.0.2", ("webhook", "addr"), "127.0.0.2"),
    "DSCACHE_OPERATOR_WEBHOOK_HOST": ("10.0.0.5", ("webhook", "host"), "10.0.0.5"),
    "DSCACHE_OPERATOR_PREPARE_ENV": (
        '[{"name": "DSCACHE_RETRY_ATTEMPTS", "value": "3"}]',
        ("prepare_env",),
        (EnvVar(name="DSCACHE_RETRY_ATTEMPTS", value="3"),),
    ),
    "DSCACHE_OPERATOR_PREPARE_ENV_FROM": (
        '[{"configMapRef": {"name": "tuning"}}]',
        ("prepare_env_from",),
        (EnvFromSource(config_map_ref=ObjectSource(name="tuning")),),
    ),
    "DSCACHE_OPERATOR_INSTALLER_SERVICE_ACCOUNT_NAME": (
        "s3-reader",
        ("installer", "service_account_name"),
        "s3-reader",
    ),
    "DSCACHE_OPERATOR_INSTALLER_NODE_SELECTOR": (
        '{"pool": "io"}',
        ("installer", "node_selector"),
        {"pool": "io"},
    ),
    "DSCACHE_OPERATOR_INSTALLER_TOLERATIONS": (
        '[{"key": "io", "operator": "Exists", "effect": "NoSchedule"}]',
        ("installer", "tolerations"),
        (Toleration(key="io", operator="Exists", effect="NoSchedule"),),
    ),
    "DSCACHE_OPERATOR_INSTALLER_AFFINITY": (
        '{"nodeAffinity": {}}',
        ("installer", "affinity"),
        {"nodeAffinity": {}},
    ),
    "DSCACHE_OPERATOR_INSTALLER_PRIORITY_CLASS_NAME": (
        "batch-low",
        ("installer", "priority_class_name"),
        "batch-low",
    ),
    "DSCACHE_OPERATOR_INSTALLER_IMAGE_PULL_SECRETS": (
        '[{"name": "regcred"}]',
        ("installer", "image_pull_secrets"),
        (LocalObjectReference(name="regcred"),),
    ),
    "DSCACHE_OPERATOR_INSTALLER_ENV": (
        '[{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]',
        ("installer", "env"),
        (EnvVar(name="HTTPS_PROXY", value="http://proxy:3128"),),
    ),
    "DSCACHE_OPERATOR_INSTALLER_ENV_FROM": (
        '[{"configMapRef": {"name": "proxy-env"}}]',
        ("installer", "env_from"),
        (EnvFromSource(config_map_ref=ObjectSource(name="proxy-env")),),
    ),
    "DSCACHE_OPERATOR_INSTALLER_POD_LABELS": ('{"team": "ml"}', ("installer", "pod_labels"), {"team": "ml"}),
    "DSCACHE_OPERATOR_INSTALLER_POD_ANNOTATIONS": (
        '{"note": "x"}',
        ("installer", "pod_annotations"),
        {"note": "x"},
    ),
    "DSCACHE_OPERATOR_INSTALLER_RESOURCES": (
        '{"requests": {"cpu": 2}}',
        ("installer", "resources"),
        {"requests": {"cpu": "2"}},
    ),
    "DSCACHE_OPERATOR_RETRY_BASE_SECONDS": ("5", ("retry_base_seconds",), 5),
    "DSCACHE_OPERATOR_RETRY_MAX_SECONDS": ("600", ("retry_max_seconds",), 600),
    "DSCACHE_OPERATOR_STATUS_INTERVAL": ("2.5", ("status_interval",), 2.5),
}


def run_settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    """What `dscache-operator run ARGV` runs with in environment ENV."""
    return load(vars(build_parser().parse_args(["run", *argv])), env or {})


def field(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = getattr(value, name)
    return value


def test_defaults_live_in_the_model() -> None:
    assert run_settings([]) == Settings()
    assert Settings() == Settings(
        image="ghcr.io/dscache/dscache:0.1.0",
        image_pull_policy="IfNotPresent",
        prepare_image=None,
        run_as_user=65532,
        installer_api_url=None,
        namespaces=(),
        peering_name="dscache",
        priority=None,
        standalone=False,
        liveness_url="http://0.0.0.0:8080/healthz",
        metrics_port=9090,
        prepare_wait=3600,
        prepare_resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        scratch_host_paths=(),
        verbose=False,
        webhook=WebhookSettings(cert=None, key=None, dev=False, port=9443, addr="0.0.0.0", host="127.0.0.1"),
        prepare_env=None,
        prepare_env_from=None,
        installer=InstallerDefaults(),
        retry_base_seconds=30,
        retry_max_seconds=1800,
        status_interval=None,
    )
    assert InstallerDefaults() == InstallerDefaults(
        service_account_name=None,
        node_selector=None,
        tolerations=None,
        affinity=None,
        priority_class_name=None,
        image_pull_secrets=None,
        env=None,
        env_from=None,
        pod_labels=None,
        pod_annotations=None,
        resources=None,
    )


def test_every_flag_has_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    flags = [o.flag for o in OPTIONS]
    assert flags == [
        "--image", "--prepare-image", "--image-pull-policy", "--run-as-user", "--installer-api-url",
        "--namespace", "--peering", "--priority", "--standalone", "--liveness", "--metrics-port",
        "--prepare-wait", "--prepare-resources", "--scratch-host-path", "--verbose", "--webhook-cert",
        "--webhook-key", "--webhook-dev", "--webhook-port", "--webhook-addr", "--webhook-host",
        "--prepare-env", "--prepare-env-from", "--installer-service-account-name",
        "--installer-node-selector", "--installer-tolerations", "--installer-affinity",
        "--installer-priority-class-name", "--installer-image-pull-secrets", "--installer-env",
        "--installer-env-from", "--installer-pod-labels", "--installer-pod-annotations",
        "--installer-resources", "--retry-base-seconds", "--retry-max-seconds", "--status-interval",
    ]  # fmt: skip
    assert [o.env for o in OPTIONS] == list(EVERY_VARIABLE)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    for option in OPTIONS:
        assert option.flag in help_text and f"[{option.env};" in help_text


@pytest.mark.parametrize("variable", sorted(EVERY_VARIABLE))
def test_each_variable_sets_its_setting(variable: str) -> None:
    text, path, expected = EVERY_VARIABLE[variable]
    env = {variable: text}
    if path == ("webhook", "cert"):
        env["DSCACHE_OPERATOR_WEBHOOK_KEY"] = "/certs/tls.key"
    if path == ("webhook", "key"):
        env["DSCACHE_OPERATOR_WEBHOOK_CERT"] = "/certs/tls.crt"
    settings = run_settings([], env)
    assert field(settings, path) == expected
    assert field(settings, path) != field(Settings(), path), "the sample must differ from the default"


def test_all_variables_at_once() -> None:
    settings = run_settings([], {k: text for k, (text, _, _) in EVERY_VARIABLE.items()})
    for text, path, expected in EVERY_VARIABLE.values():
        assert field(settings, path) == expected, (path, text)


def test_a_flag_beats_its_variable() -> None:
    env = {
        "DSCACHE_OPERATOR_IMAGE": "from-env:1",
        "DSCACHE_OPERATOR_NAMESPACE": "a,b",
        "DSCACHE_OPERATOR_STANDALONE": "1",
        "DSCACHE_OPERATOR_METRICS_PORT": "9",
        "DSCACHE_OPERATOR_LIVENESS": "http://0.0.0.0:1/healthz",
        "DSCACHE_OPERATOR_RUN_AS_USER": "2000",
        "DSCACHE_OPERATOR_WEBHOOK_PORT": "8443",
    }
    argv = [
        "--image=from-flag:2", "--namespace", "c", "--no-standalone", "--metrics-port", "0",
        "--liveness", "", "--webhook-port", "10443",
    ]  # fmt: skip
    settings = run_settings(argv, env)
    assert settings.image == "from-flag:2"
    assert settings.namespaces == ("c",)
    assert settings.standalone is False
    assert settings.metrics_port == 0
    assert settings.liveness_url is None
    assert settings.webhook.port == 10443
    assert settings.run_as_user == 2000  # no flag given: the variable


def test_unrelated_variables_are_ignored() -> None:
    assert run_settings([], {"DSCACHE_IMAGE": "x", "IMAGE": "y", "dscache_operator_image": "z"}) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DSCACHE_OPERATOR_METRICS_PORT": "http"},
            "DSCACHE_OPERATOR_METRICS_PORT='http': Input should be a valid integer, unable to parse string "
            "as an integer",
        ),
        (
            {"DSCACHE_OPERATOR_WEBHOOK_PORT": "70000"},
            "DSCACHE_OPERATOR_WEBHOOK_PORT='70000': Input should be less than or equal to 65535",
        ),
        (
            {"DSCACHE_OPERATOR_IMAGE_PULL_POLICY": "Sometimes"},
            "DSCACHE_OPERATOR_IMAGE_PULL_POLICY='Sometimes': Input should be 'Always', 'IfNotPresent' or "
            "'Never'",
        ),
        (
            {"DSCACHE_OPERATOR_RUN_AS_USER": "0"},
            "DSCACHE_OPERATOR_RUN_AS_USER='0': Input should be greater than or equal to 1",
        ),
        (
            {"DSCACHE_OPERATOR_PREPARE_WAIT": "-1"},
            "DSCACHE_OPERATOR_PREPARE_WAIT='-1': Input should be greater than or equal to 0",
        ),
        (
            {"DSCACHE_OPERATOR_PREPARE_RESOURCES": "{cpu: 1}"},
            "DSCACHE_OPERATOR_PREPARE_RESOURCES='{cpu: 1}': not JSON (Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1))",
        ),
        (
            {"DSCACHE_OPERATOR_PREPARE_RESOURCES": '{"requsts": {"cpu": "1"}}'},
            'DSCACHE_OPERATOR_PREPARE_RESOURCES=\'{"requsts": {"cpu": "1"}}\' at requsts: Input should '
            "be 'requests' or 'limits'",
        ),
        (
            {"DSCACHE_OPERATOR_WEBHOOK_DEV": "maybe"},
            "DSCACHE_OPERATOR_WEBHOOK_DEV='maybe': Input should be a valid boolean, unable to interpret "
            "input",
        ),
        (
            {"DSCACHE_OPERATOR_INSTALLER_API_URL": "api:6443"},
            "DSCACHE_OPERATOR_INSTALLER_API_URL='api:6443': String should match pattern '^https?://'",
        ),
        (
            {"DSCACHE_OPERATOR_NAMESPACE": "ml,Team_A"},
            "DSCACHE_OPERATOR_NAMESPACE item 'Team_A': String should match pattern "
            "'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'",
        ),
        (
            {"DSCACHE_OPERATOR_SCRATCH_HOST_PATH": "/mnt/nvme,/mnt/../etc"},
            "DSCACHE_OPERATOR_SCRATCH_HOST_PATH item '/mnt/../etc': '/mnt/../etc' has a '..' segment: "
            "paths are compared as written, and '..' is resolved after symlinks, so it could lead anywhere",
        ),
        (
            {"DSCACHE_OPERATOR_SCRATCH_HOST_PATH": "/"},
            "DSCACHE_OPERATOR_SCRATCH_HOST_PATH item '/': '/' overlaps /bin, which pods must never be able "
            "to write",
        ),
        (
            {"DSCACHE_OPERATOR_SCRATCH_HOST_PATH": "/var/lib/kubelet/scratch"},
            "DSCACHE_OPERATOR_SCRATCH_HOST_PATH item '/var/lib/kubelet/scratch': '/var/lib/kubelet/scratch' "
            "overlaps /var/lib/kubelet, which pods must never be able to write",
        ),
        (
            {"DSCACHE_OPERATOR_INSTALLER_RESOURCES": '{"requests": {"cpu": "two"}}'},
            'DSCACHE_OPERATOR_INSTALLER_RESOURCES=\'{"requests": {"cpu": "two"}}\' at requests.cpu: '
            "'two' is not a Kubernetes quantity such as 500m, 2 or 4Gi",
        ),
        (
            {"DSCACHE_OPERATOR_INSTALLER_TOLERATIONS": '[{"key": "io", "operator": "In"}]'},
            "DSCACHE_OPERATOR_INSTALLER_TOLERATIONS item 'In': Input should be 'Exists' or 'Equal'",
        ),
        (
            {"DSCACHE_OPERATOR_PREPARE_ENV": '[{"name": "LD_PRELOAD", "value": "/dscache/x.so"}]'},
            'DSCACHE_OPERATOR_PREPARE_ENV=\'[{"name": "LD_PRELOAD", "value": "/dscache/x.so"}]\': '
            "LD_PRELOAD is not allowed (nor any LD_* name): the dynamic loader and the C library read it to "
            "choose the libraries and data files every program loads (glibc removes it for setuid "
            "programs); set to a directory of the cache, it would let the cache's source decide that in "
            "every pod that uses the cache",
        ),
        (
            {"DSCACHE_OPERATOR_STATUS_INTERVAL": "-1"},
            "DSCACHE_OPERATOR_STATUS_INTERVAL='-1': Input should be greater than or equal to 0",
        ),
        (
            {"DSCACHE_OPERATOR_WEBHOOK_CERT": "/certs/tls.crt"},
            "--webhook-cert and --webhook-key go together (set: DSCACHE_OPERATOR_WEBHOOK_CERT)",
        ),
        (
            {"DSCACHE_OPERATOR_RETRY_BASE_SECONDS": "3600"},
            "--retry-base-seconds (3600) is more than --retry-max-seconds (1800): the first delay before "
            "a retry cannot exceed the longest (set: DSCACHE_OPERATOR_RETRY_BASE_SECONDS)",
        ),
    ],
)
def test_a_bad_variable_is_refused_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        run_settings([], env)
    assert str(err.value) == message


def test_scratch_host_paths_are_kept_in_normal_form() -> None:
    """Requests are compared with the admin's directories as normal paths: the spelling must not matter."""
    settings = run_settings(["--scratch-host-path", "/mnt//nvme/./dscache/", "--scratch-host-path", "/x"])
    assert settings.scratch_host_paths == ("/mnt/nvme/dscache", "/x")


def test_a_bad_flag_is_refused_naming_it() -> None:
    with pytest.raises(SettingsError) as err:
        run_settings(["--prepare-wait", "soon"], {"DSCACHE_OPERATOR_PREPARE_WAIT": "60"})
    assert (
        str(err.value)
        == "--prepare-wait='soon': Input should be a valid number, unable to parse string as a number"
    )


def test_a_first_retry_delay_longer_than_the_longest_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError) as err:
        run_settings(
            ["--retry-base-seconds", "100"],
            {"DSCACHE_OPERATOR_RETRY_MAX_SECONDS": "10", "DSCACHE_OPERATOR_VERBOSE": "1"},
        )
    assert str(err.value) == (
        "--retry-base-seconds (100) is more than --retry-max-seconds (10): the first delay before a retry "
        "cannot exceed the longest (set: --retry-base-seconds, DSCACHE_OPERATOR_RETRY_MAX_SECONDS)"
    )
    assert run_settings(["--retry-base-seconds", "10", "--retry-max-seconds", "10"]).retry_base_seconds == 10


def test_a_bad_variable_overridden_by_its_flag_does_not_matter() -> None:
    settings = run_settings(["--metrics-port", "0"], {"DSCACHE_OPERATOR_METRICS_PORT": "tcp://10.0.0.1:9090"})
    assert settings.metrics_port == 0


def test_the_command_exits_2_with_one_line_and_no_traceback() -> None:
    env = {**os.environ, "DSCACHE_OPERATOR_WEBHOOK_PORT": "tcp://10.96.0.12:443"}
    proc = subprocess.run(
        [sys.executable, "-m", "dscache_operator.cli", "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "dscache-operator: DSCACHE_OPERATOR_WEBHOOK_PORT='tcp://10.96.0.12:443': Input should be a valid "
        "integer, unable to parse string as an integer\n"
    )
    assert proc.stdout == ""
