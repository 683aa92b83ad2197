"""The operator's image, built by the test world (hack/build-image.sh: buildah on an mmdebstrap
base, cached under ~/.cache/botsecret/image): it runs, as its numeric non-root user, and needs no
writable root filesystem."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from botsecret import __version__

REPO = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "botsecret" / "image"

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.image,
    # The image fixture gives the build 1800 s (a new machine builds the base with mmdebstrap; a
    # shared cache builds one image at a time): pytest-timeout's 300 s must not cut it shorter.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(shutil.which("buildah") is None,
                       reason="buildah is not installed: hack/install-image-tools.sh installs it (as root)"),
]


def buildah(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["buildah", "--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run"),
                           "--storage-driver", "vfs", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        pytest.fail(f"buildah {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def image() -> str:
    start = time.monotonic()
    done = subprocess.run(["bash", str(REPO / "hack" / "build-image.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"\nimage: {done.stderr.strip()}\nimage: ready in {time.monotonic() - start:.0f} s")
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def container(image: str) -> Iterator[str]:
    name = buildah("from", "--pull-never", image).stdout.strip()
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


def test_the_image_runs_botsecret_as_its_numeric_user_and_its_size_is_printed(image: str) -> None:
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)
    oci = config["OCIv1"]["config"]
    assert oci["User"] == "65532:65532"
    assert oci["Entrypoint"] == ["/opt/botsecret/bin/botsecret"]
    size = buildah("images", "--noheading", "--format", "{{.Size}}", image).stdout.strip()
    assert size, "buildah reports no size"
    print(f"\nimage: {image} is {size}")
    with container(image) as name:
        done = buildah("run", "--isolation", "chroot", name, "--", "/opt/botsecret/bin/botsecret", "--version")
        assert done.stdout.strip() == f"botsecret {__version__}"
        uid = buildah("run", "--isolation", "chroot", name, "--", "/opt/botsecret/bin/python", "-c",
                      "import os; print(os.getuid(), os.getgid())")
        assert uid.stdout.split() == ["65532", "65532"]
        compilers = buildah("run", "--isolation", "chroot", name, "--", "/opt/botsecret/bin/python", "-c",
                            "import shutil; print([c for c in ('gcc', 'cc', 'g++', 'clang', 'make') if shutil.which(c)])")
        assert compilers.stdout.strip() == "[]", "compilers in the final image"


def test_the_operator_imports_and_starts_on_a_read_only_root(image: str) -> None:
    """Every module of the operator loads under a read-only root as its user, with the image's
    environment: nothing (bytecode, caches, temporary files) needs writing."""
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    with container(image) as name:
        root = buildah("mount", name).stdout.strip()
        read_only = Path(tempfile.mkdtemp(prefix="botsecret-ro-"))
        try:
            subprocess.run(["mount", "--bind", root, str(read_only)], check=True)
            try:
                subprocess.run(["mount", "-o", "remount,bind,ro", str(read_only)], check=True)
                probe = ("import botsecret.cli, botsecret.handlers, botsecret.providers.aws, botsecret.providers.gcp, "
                         "botsecret.providers.vault; print('imported')")
                done = subprocess.run(["chroot", "--userspec=65532:65532", str(read_only), "/opt/botsecret/bin/python",
                                       "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False)
                assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr
                written = subprocess.run(["touch", str(read_only / "probe")], capture_output=True, check=False)
                assert written.returncode != 0, "the root was writable after all"
            finally:
                subprocess.run(["umount", str(read_only)], check=False)
        finally:
            read_only.rmdir()
            buildah("umount", name, check=False)
