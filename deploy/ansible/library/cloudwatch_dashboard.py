#!/usr/bin/python
"""Ansible module: a CloudWatch dashboard (no collection module exists for dashboards)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudwatch_dashboard
short_description: Manage a CloudWatch dashboard
description:
  - Creates, updates or deletes one CloudWatch dashboard.
  - Neither amazon.aws nor community.aws has a module for dashboards.
  - Idempotent (the body is compared as parsed JSON) and check-mode aware.
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  name:
    description: The dashboard's name.
    required: true
    type: str
  body:
    description: The dashboard body (the C(widgets) document); required when I(state=present).
    type: dict
  state:
    description: Whether the dashboard should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Create the service dashboard
  cloudwatch_dashboard:
    name: algo-trading-prod
    body:
      widgets: []
"""

RETURN = r"""
dashboard_arn:
  description: ARN of the dashboard (not in check mode before it exists).
  returned: when the dashboard exists
  type: str
"""

# Ansible's layout: the documentation strings come first, then the imports.
import json  # noqa: E402
from typing import Any  # noqa: E402

try:  # noqa: SIM105 (Ansible's idiom: AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import (  # noqa: E402
    AnsibleAWSModule,
)


def _current(client: Any, name: str) -> dict[str, Any] | None:
    try:
        found = client.get_dashboard(DashboardName=name)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in (
            "ResourceNotFound",
            "ResourceNotFoundException",
        ):
            return None
        raise
    return dict(found)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "body": {"type": "dict"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["body"])],
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("cloudwatch")
    try:
        existing = _current(client, p["name"])
        if p["state"] == "absent":
            if existing is not None and not module.check_mode:
                client.delete_dashboards(DashboardNames=[p["name"]])
            module.exit_json(changed=existing is not None)

        wanted = json.loads(json.dumps(p["body"]))
        if existing is not None and json.loads(existing["DashboardBody"]) == wanted:
            module.exit_json(changed=False, dashboard_arn=existing["DashboardArn"])
        if module.check_mode:
            module.exit_json(changed=True)
        response = client.put_dashboard(
            DashboardName=p["name"], DashboardBody=json.dumps(wanted, sort_keys=True)
        )
        problems = response.get("DashboardValidationMessages") or []
        if problems:
            module.fail_json(msg="the dashboard body is not valid", messages=problems)
        arn = _current(client, p["name"]) or {}
        module.exit_json(changed=True, dashboard_arn=arn.get("DashboardArn"))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="CloudWatch dashboard operation failed")


if __name__ == "__main__":
    main()
