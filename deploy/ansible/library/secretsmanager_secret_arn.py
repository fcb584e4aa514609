#!/usr/bin/python
"""Ansible module: the full ARN of a Secrets Manager secret by name (read only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secretsmanager_secret_arn
short_description: Read the full ARN of a Secrets Manager secret
description:
  - Returns the ARN (with the six random characters AWS appends) of a secret by its name, so
    that ECS task definitions can name it in C(valueFrom). Never reads the secret's value.
  - community.aws.secretsmanager_secret has no info mode and the amazon.aws lookup returns only
    values. Read only; runs the same in check mode.
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  name:
    description: The secret's name.
    required: true
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Read the database secret's ARN
  secretsmanager_secret_arn:
    name: algo-trading-prod-db-password
  register: db_secret
"""

RETURN = r"""
arn:
  description: The secret's ARN; empty when it does not exist or is scheduled for deletion.
  returned: always
  type: str
"""

# Ansible's layout: the documentation strings come first, then the imports.
try:  # noqa: SIM105 (Ansible's idiom: AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import (  # noqa: E402
    AnsibleAWSModule,
)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={"name": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    client = module.client("secretsmanager")
    try:
        found = client.describe_secret(SecretId=module.params["name"])
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            module.exit_json(changed=False, arn="")
        module.fail_json_aws(e, msg="describe_secret failed")
    except botocore.exceptions.BotoCoreError as e:
        module.fail_json_aws(e, msg="describe_secret failed")
    arn = "" if found.get("DeletedDate") else str(found["ARN"])
    module.exit_json(changed=False, arn=arn)


if __name__ == "__main__":
    main()
