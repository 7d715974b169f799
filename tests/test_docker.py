"""docker/: the images lint clean and the compose file wires one study DB, a Ray head, workers
and the search driver together. No Docker engine here: nothing is built or started."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

DOCKER = Path(__file__).resolve().parents[1] / "docker"
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.cuda"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())  # merge keys (<<) resolved


def _command(service: dict) -> str:
    cmd = service["command"]
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_is_clean(dockerfile: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint comes with the dev extras: pip install -e '.[dev]'"
    run = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKER / dockerfile)], capture_output=True, text=True
    )
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_images_install_the_package_with_torch_2_13(dockerfile: str) -> None:
    text = (DOCKER / dockerfile).read_text()
    repo = DOCKER.parent
    ignore = (DOCKER / f"{dockerfile}.dockerignore").read_text().splitlines()
    for line in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, flags=re.M):
        for source in line.split():
            assert (repo / source).exists(), f"{dockerfile}: COPY {source}: not in the repo"
            assert f"!{source.rstrip('/')}" in [i.rstrip("/") for i in ignore], source
    assert re.search(r"pip install \.", text)
    if dockerfile == "Dockerfile.cpu":
        assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in text
    else:
        assert re.search(r"pytorch/pytorch:2\.13\.0-cuda[\d.]+-cudnn\d+-runtime", text)
    assert re.search(r"^USER \d+", text, flags=re.M)  # not root


def test_compose_wires_one_study_db_a_head_and_workers(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "ray-head", "ray-worker", "search"} <= set(services)

    # one storage URL, pointing at the postgres service, without a password
    urls = {
        name: s["environment"]["STORAGE"]
        for name, s in services.items()
        if "STORAGE" in s.get("environment", {})
    }
    assert "search" in urls and len(set(urls.values())) == 1, urls
    url = make_url(urls["search"])
    pg = services["postgres"]["environment"]
    assert url.drivername.startswith("postgresql") and url.host == "postgres"
    assert (url.username, url.database) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    assert url.password is None
    assert "$STORAGE" in _command(services["search"])

    # the head listens where the workers and the driver join
    head = _command(services["ray-head"])
    port = re.search(r"--port[= ](\d+)", head).group(1)
    assert "--head" in head
    for name in ("ray-worker", "search"):
        assert f"--address=ray-head:{port}" in _command(services[name]), name
    assert "--ray-address auto" in _command(services["search"])
    assert "replicas" in services["ray-worker"]["deploy"]

    # every Ray node reads the same token, from a secret file
    for name in ("ray-head", "ray-worker", "search"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token", name
        assert "ray_auth_token" in services[name]["secrets"], name


def test_no_secret_in_plain_text(compose: dict) -> None:
    secrets = compose["secrets"]
    for name, spec in secrets.items():
        assert spec["file"].startswith("./secrets/"), name
    gitignore = (DOCKER / "secrets" / ".gitignore").read_text().split()
    assert "*" in gitignore  # the secret files never reach git
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key) and not key.endswith(("_FILE", "_PATH")):
                pytest.fail(f"{name}: {key} holds a secret in plain text")
            if key.endswith(("_FILE", "_PATH")) and re.search(r"PASSWORD|TOKEN", key):
                secret = Path(value).name
                assert value == f"/run/secrets/{secret}", (name, key)
                assert secret in service["secrets"] and secret in secrets, (name, key)


def test_entrypoint_exports_secret_files(tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret")
    entry = [str(DOCKER / "entrypoint.sh")]
    env = {"PATH": os.environ["PATH"], "PGPASSWORD_FILE": str(secret)}
    run = subprocess.run(
        [*entry, "sh", "-c", 'echo "$PGPASSWORD ${PGPASSWORD_FILE:-unset}"'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stdout.strip() == "s3cret unset", run.stderr
    env["PGPASSWORD_FILE"] = str(tmp_path / "missing")
    run = subprocess.run([*entry, "true"], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "PGPASSWORD_FILE" in run.stderr
