"""Session fixtures of the image checks: the three Dockerfiles and .dockerignore, read once."""

from __future__ import annotations

import pytest
from images_support import IMAGES, REPO, Dockerfile, DockerIgnore, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, Dockerfile]:
    return {name: parse_dockerfile(REPO / f"Dockerfile.{name}") for name in IMAGES}


@pytest.fixture(scope="session")
def dockerignore() -> DockerIgnore:
    return DockerIgnore((REPO / ".dockerignore").read_text())
