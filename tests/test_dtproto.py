"""The generated protobuf module is what protoc makes of DT's vendored notification.proto."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from worker.core.dtproto import notification_pb2

PACKAGE = REPO / "worker" / "core" / "dtproto"


def test_the_committed_module_is_what_protoc_generates_from_the_vendored_proto(tmp_path):
    subprocess.run(
        [str(REPO / "scripts" / "generate-dtproto"), str(tmp_path)],
        check=True,
        capture_output=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    for name in ("notification_pb2.py", "notification_pb2.pyi"):
        generated = (tmp_path / "worker" / "core" / "dtproto" / name).read_bytes()
        assert generated == (PACKAGE / name).read_bytes(), (
            f"{name} is not what protoc generates: run scripts/generate-dtproto"
        )


def test_the_messages_carry_dt_s_own_names_so_type_urls_match_what_dt_packs():
    assert notification_pb2.Notification.DESCRIPTOR.full_name == (
        "org.dependencytrack.notification.v1.Notification"
    )
    assert "Copyright (c) OWASP Foundation" in (PACKAGE / "NOTICE").read_text()
    assert "Apache License" in (PACKAGE / "LICENSE.txt").read_text()
