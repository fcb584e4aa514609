#!/usr/bin/python
"""Ansible module: Container Insights and tags of an ECS cluster (community.aws.ecs_cluster
sets neither)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_cluster_settings
short_description: Set Container Insights and the tags of an existing ECS cluster
description:
  - Sets the C(containerInsights) cluster setting and the cluster's tags.
  - community.aws.ecs_cluster (10.0.0) has options for neither.
  - Idempotent and check-mode aware; fails when the cluster does not exist (in check mode it
    reports a change instead, as the cluster would be created by the task before it).
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  name:
    description: The cluster's name.
    required: true
    type: str
  container_insights:
    description: Value of the containerInsights setting.
    type: str
    choices: [enabled, disabled, enhanced]
    default: enabled
  tags:
    description: Tags of the cluster (added or updated; others are removed). Omit to leave them.
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Turn on Container Insights
  ecs_cluster_settings:
    name: algo-trading-prod
    container_insights: enabled
    tags:
      Environment: prod
"""

RETURN = r"""
cluster_arn:
  description: ARN of the cluster (absent in check mode when the cluster does not exist yet).
  returned: when the cluster exists
  type: str
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


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "container_insights": {
                "type": "str",
                "choices": ["enabled", "disabled", "enhanced"],
                "default": "enabled",
            },
            "tags": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("ecs")
    try:
        found = client.describe_clusters(clusters=[p["name"]], include=["SETTINGS", "TAGS"])
        clusters = [c for c in found.get("clusters", []) if c.get("status") == "ACTIVE"]
        if not clusters:
            if module.check_mode:
                module.exit_json(changed=True)
            module.fail_json(msg=f"ECS cluster {p['name']} does not exist: create it first")
        cluster: dict[str, Any] = clusters[0]
        arn = cluster["clusterArn"]
        changed = False
        settings = {s["name"]: s["value"] for s in cluster.get("settings", [])}
        if settings.get("containerInsights") != p["container_insights"]:
            changed = True
            if not module.check_mode:
                client.update_cluster(
                    cluster=arn,
                    settings=[{"name": "containerInsights", "value": p["container_insights"]}],
                )
        if p["tags"] is not None:
            wanted = {k: str(v) for k, v in p["tags"].items()}
            current = {t["key"]: t["value"] for t in cluster.get("tags", [])}
            to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
            to_remove = [k for k in current if k not in wanted]
            if to_set or to_remove:
                changed = True
                if not module.check_mode:
                    if to_set:
                        client.tag_resource(
                            resourceArn=arn,
                            tags=[{"key": k, "value": v} for k, v in to_set.items()],
                        )
                    if to_remove:
                        client.untag_resource(resourceArn=arn, tagKeys=to_remove)
        module.exit_json(changed=changed, cluster_arn=arn)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="ECS cluster settings operation failed")


if __name__ == "__main__":
    main()
