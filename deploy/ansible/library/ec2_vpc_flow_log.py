#!/usr/bin/python
"""Ansible module: VPC flow logs to CloudWatch Logs (no collection module exists for them)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_vpc_flow_log
short_description: Manage a VPC flow log that delivers to CloudWatch Logs
description:
  - Creates or deletes the flow log of one VPC into one CloudWatch Logs group.
  - Idempotent (a flow log is identified by its VPC and log group) and check-mode aware.
  - Neither amazon.aws nor community.aws has a module for flow logs.
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  resource_id:
    description: The VPC id.
    required: true
    type: str
  log_group_name:
    description: The CloudWatch Logs group the flow log writes to.
    required: true
    type: str
  deliver_logs_permission_arn:
    description: ARN of the IAM role the flow log service assumes; required when I(state=present).
    type: str
  traffic_type:
    description: Which traffic to record.
    type: str
    choices: [ACCEPT, REJECT, ALL]
    default: ALL
  max_aggregation_interval:
    description: Seconds over which packets are aggregated into one record.
    type: int
    choices: [60, 600]
    default: 600
  tags:
    description: Tags of the flow log (added or updated; others are removed).
    type: dict
  state:
    description: Whether the flow log should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Send the VPC flow logs to CloudWatch Logs
  ec2_vpc_flow_log:
    resource_id: vpc-0123456789abcdef0
    log_group_name: /algo-trading/prod/vpc-flow-logs
    deliver_logs_permission_arn: arn:aws:iam::123456789012:role/algo-trading-prod-vpc-flow-logs
    tags:
      Environment: prod
"""

RETURN = r"""
flow_log_ids:
  description: Ids of the matching flow logs (after the change; empty when absent).
  returned: always
  type: list
  elements: str
"""

# Ansible's layout: the documentation strings come first, then the imports.
from typing import Any  # noqa: E402

try:  # noqa: SIM105 (Ansible's idiom: AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import (  # noqa: E402
    AnsibleAWSModule,
)


def _find(client: Any, vpc_id: str, log_group: str) -> list[dict[str, Any]]:
    found = client.describe_flow_logs(
        Filters=[
            {"Name": "resource-id", "Values": [vpc_id]},
            {"Name": "log-group-name", "Values": [log_group]},
        ]
    )["FlowLogs"]
    return [f for f in found if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]


def _tags(flow_log: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in flow_log.get("Tags", [])}


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "resource_id": {"type": "str", "required": True},
            "log_group_name": {"type": "str", "required": True},
            "deliver_logs_permission_arn": {"type": "str"},
            "traffic_type": {
                "type": "str",
                "choices": ["ACCEPT", "REJECT", "ALL"],
                "default": "ALL",
            },
            "max_aggregation_interval": {"type": "int", "choices": [60, 600], "default": 600},
            "tags": {"type": "dict"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["deliver_logs_permission_arn"])],
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("ec2")
    try:
        existing = _find(client, p["resource_id"], p["log_group_name"])
        changed = False
        if p["state"] == "absent":
            if existing:
                changed = True
                if not module.check_mode:
                    client.delete_flow_logs(FlowLogIds=[f["FlowLogId"] for f in existing])
            module.exit_json(changed=changed, flow_log_ids=[])

        wanted_tags = p["tags"] or {}
        if not existing:
            changed = True
            if not module.check_mode:
                kwargs: dict[str, Any] = {
                    "ResourceIds": [p["resource_id"]],
                    "ResourceType": "VPC",
                    "TrafficType": p["traffic_type"],
                    "LogDestinationType": "cloud-watch-logs",
                    "LogGroupName": p["log_group_name"],
                    "DeliverLogsPermissionArn": p["deliver_logs_permission_arn"],
                    "MaxAggregationInterval": p["max_aggregation_interval"],
                }
                if wanted_tags:
                    kwargs["TagSpecifications"] = [
                        {
                            "ResourceType": "vpc-flow-log",
                            "Tags": [{"Key": k, "Value": str(v)} for k, v in wanted_tags.items()],
                        }
                    ]
                response = client.create_flow_logs(**kwargs)
                if response.get("Unsuccessful"):
                    module.fail_json(
                        msg="create_flow_logs failed", unsuccessful=response["Unsuccessful"]
                    )
            module.exit_json(changed=True, flow_log_ids=[])

        flow_log = existing[0]
        settings_differ = (
            flow_log.get("TrafficType") != p["traffic_type"]
            or flow_log.get("DeliverLogsPermissionArn") != p["deliver_logs_permission_arn"]
        )
        if settings_differ:
            module.fail_json(
                msg=(
                    f"flow log {flow_log['FlowLogId']} exists with other settings (traffic type or "
                    "role) that AWS cannot change in place: remove it (state=absent) and re-run"
                )
            )
        if p["tags"] is not None:
            current = _tags(flow_log)
            to_set = {k: str(v) for k, v in wanted_tags.items() if current.get(k) != str(v)}
            to_remove = [k for k in current if k not in wanted_tags]
            if to_set or to_remove:
                changed = True
                if not module.check_mode:
                    if to_set:
                        client.create_tags(
                            Resources=[flow_log["FlowLogId"]],
                            Tags=[{"Key": k, "Value": v} for k, v in to_set.items()],
                        )
                    if to_remove:
                        client.delete_tags(
                            Resources=[flow_log["FlowLogId"]], Tags=[{"Key": k} for k in to_remove]
                        )
        module.exit_json(changed=changed, flow_log_ids=[f["FlowLogId"] for f in existing])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="VPC flow log operation failed")


if __name__ == "__main__":
    main()
