#!/usr/bin/python
"""Ansible module: the tags of ECR repositories (community.aws.ecs_ecr has no tags option)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_tags
short_description: Set the tags of ECR repositories given by ARN
description:
  - Adds or updates the given tags on each repository and, with I(purge_tags), removes the others.
  - community.aws.ecs_ecr (10.0.0) creates repositories but cannot tag them.
  - Idempotent and check-mode aware.
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  repository_arns:
    description: ARNs of the repositories (C(arn:aws:ecr:<region>:<account>:repository/<name>)).
    required: true
    type: list
    elements: str
  tags:
    description: The tags every repository should carry.
    required: true
    type: dict
  purge_tags:
    description: Remove the tags not in I(tags).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Tag the image repositories
  ecr_tags:
    repository_arns:
      - arn:aws:ecr:ap-south-1:123456789012:repository/algo-trading-prod/trading
    tags:
      Environment: prod
"""

RETURN = r"""
tags:
  description: The tags of each repository after the change (as they would be, in check mode).
  returned: always
  type: dict
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


def _tags(client: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in client.list_tags_for_resource(resourceArn=arn)["tags"]}


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "repository_arns": {"type": "list", "elements": "str", "required": True},
            "tags": {"type": "dict", "required": True},
            "purge_tags": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    bad = [a for a in p["repository_arns"] if not a.startswith("arn:") or ":ecr:" not in a]
    if bad:
        module.fail_json(msg=f"not ECR repository ARNs: {bad}")
    wanted = {str(k): str(v) for k, v in p["tags"].items()}
    client = module.client("ecr")
    changed = False
    after: dict[str, dict[str, str]] = {}
    try:
        for arn in p["repository_arns"]:
            current = _tags(client, arn)
            to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
            to_remove = [k for k in current if k not in wanted] if p["purge_tags"] else []
            if to_set or to_remove:
                changed = True
                if not module.check_mode:
                    if to_remove:
                        client.untag_resource(resourceArn=arn, tagKeys=to_remove)
                    if to_set:
                        client.tag_resource(
                            resourceArn=arn,
                            tags=[{"Key": k, "Value": v} for k, v in to_set.items()],
                        )
            after[arn] = {k: v for k, v in current.items() if k not in to_remove} | to_set
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="tagging the ECR repositories failed")
    module.exit_json(changed=changed, tags=after)


if __name__ == "__main__":
    main()
