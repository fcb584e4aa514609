"""Ansible callback for tests/deploy: per-role task outcomes written to $ROLE_CHANGES_FILE.

The four-step check (check-mode create, create, check-mode re-apply, re-apply) needs to know
which role changed what; PLAY RECAP only sums over the host.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: role_changes
type: aggregate
short_description: per-role changed/ok/failed/skipped task counts as JSON (tests only)
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED; output path in ROLE_CHANGES_FILE
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "role_changes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, dict[str, int]] = defaultdict(
            lambda: {"changed": 0, "ok": 0, "failed": 0, "skipped": 0}
        )
        self._changed_tasks: dict[str, list[str]] = defaultdict(list)

    @staticmethod
    def _role(result: Any) -> str:
        role = getattr(result._task, "_role", None)
        return role.get_name() if role is not None else "(play)"

    def v2_runner_on_ok(self, result: Any) -> None:
        role = self._role(result)
        if result._result.get("changed", False):
            self._counts[role]["changed"] += 1
            self._changed_tasks[role].append(result._task.get_name())
        else:
            self._counts[role]["ok"] += 1

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._counts[self._role(result)]["failed"] += 1

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._counts[self._role(result)]["skipped"] += 1

    def v2_playbook_on_stats(self, stats: Any) -> None:
        path = os.environ.get("ROLE_CHANGES_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"counts": self._counts, "changed_tasks": self._changed_tasks}, fh)
