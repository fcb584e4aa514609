#!/usr/bin/python
"""Ansible module: target-tracking autoscaling of an ECS service (check-mode safe)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_service_scaling
short_description: Scalable target and target-tracking policy of an ECS service's desired count
description:
  - Registers the service's desired count as an Application Auto Scaling target with minimum and
    maximum capacity, and puts one target-tracking policy on it; I(state=absent) removes both.
  - community.aws.application_autoscaling_policy (10.0.0) declares check-mode support but calls
    the API in check mode (it creates and deletes for real) and leaves the scalable target behind
    on delete; this module does neither.
  - Idempotent and check-mode aware.
  - Region, credentials and endpoint work as in amazon.aws modules (AWS_URL, AWS_ENDPOINT_URL).
options:
  cluster:
    description: The ECS cluster's name.
    required: true
    type: str
  service:
    description: The ECS service's name.
    required: true
    type: str
  policy_name:
    description: Name of the target-tracking policy.
    required: true
    type: str
  min_capacity:
    description: Fewest tasks; required when I(state=present).
    type: int
  max_capacity:
    description: Most tasks; required when I(state=present).
    type: int
  target_value:
    description: Target of the metric (percent for the CPU and memory metrics).
    type: float
    default: 70.0
  predefined_metric:
    description: The predefined metric to track.
    type: str
    choices: [ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization]
    default: ECSServiceAverageCPUUtilization
  scale_out_cooldown:
    description: Seconds after a scale-out before the next one.
    type: int
    default: 60
  scale_in_cooldown:
    description: Seconds after a scale-in before the next one.
    type: int
    default: 300
  state:
    description: Whether the target and policy should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Scale the trading service on CPU
  ecs_service_scaling:
    cluster: algo-trading-prod
    service: trading
    policy_name: algo-trading-prod-trading-cpu
    min_capacity: 2
    max_capacity: 5
"""

RETURN = r"""
resource_id:
  description: The scalable target's resource id (service/<cluster>/<service>).
  returned: always
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

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "cluster": {"type": "str", "required": True},
            "service": {"type": "str", "required": True},
            "policy_name": {"type": "str", "required": True},
            "min_capacity": {"type": "int"},
            "max_capacity": {"type": "int"},
            "target_value": {"type": "float", "default": 70.0},
            "predefined_metric": {
                "type": "str",
                "choices": [
                    "ECSServiceAverageCPUUtilization",
                    "ECSServiceAverageMemoryUtilization",
                ],
                "default": "ECSServiceAverageCPUUtilization",
            },
            "scale_out_cooldown": {"type": "int", "default": 60},
            "scale_in_cooldown": {"type": "int", "default": 300},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["min_capacity", "max_capacity"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "present" and not 0 <= p["min_capacity"] <= p["max_capacity"]:
        module.fail_json(
            msg=f"min_capacity ({p['min_capacity']}) must be >= 0 and <= max_capacity "
            f"({p['max_capacity']})"
        )
    client = module.client("application-autoscaling")
    rid = f"service/{p['cluster']}/{p['service']}"
    key = {"ServiceNamespace": NAMESPACE, "ResourceId": rid, "ScalableDimension": DIMENSION}
    try:
        targets = client.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        policies = client.describe_scaling_policies(PolicyNames=[p["policy_name"]], **key)[
            "ScalingPolicies"
        ]
        changed = False
        if p["state"] == "absent":
            if policies:
                changed = True
                if not module.check_mode:
                    client.delete_scaling_policy(PolicyName=p["policy_name"], **key)
            if targets:
                changed = True
                if not module.check_mode:
                    client.deregister_scalable_target(**key)
            module.exit_json(changed=changed, resource_id=rid)

        target: dict[str, Any] = targets[0] if targets else {}
        if (target.get("MinCapacity"), target.get("MaxCapacity")) != (
            p["min_capacity"],
            p["max_capacity"],
        ):
            changed = True
            if not module.check_mode:
                client.register_scalable_target(
                    MinCapacity=p["min_capacity"], MaxCapacity=p["max_capacity"], **key
                )
        wanted = {
            "TargetValue": float(p["target_value"]),
            "PredefinedMetricSpecification": {"PredefinedMetricType": p["predefined_metric"]},
            "ScaleOutCooldown": p["scale_out_cooldown"],
            "ScaleInCooldown": p["scale_in_cooldown"],
            "DisableScaleIn": False,
        }
        current = (
            policies[0].get("TargetTrackingScalingPolicyConfiguration", {}) if policies else {}
        )
        current_view = {k: current.get(k) for k in wanted}
        if current_view.get("TargetValue") is not None:
            current_view["TargetValue"] = float(current_view["TargetValue"])
        if current_view.get("DisableScaleIn") is None and policies:
            current_view["DisableScaleIn"] = False
        spec = current_view.get("PredefinedMetricSpecification") or {}
        current_view["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": spec.get("PredefinedMetricType")
        }
        if not policies or current_view != wanted:
            changed = True
            if not module.check_mode:
                client.put_scaling_policy(
                    PolicyName=p["policy_name"],
                    PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration=wanted,
                    **key,
                )
        module.exit_json(changed=changed, resource_id=rid)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Application Auto Scaling operation failed")


if __name__ == "__main__":
    main()
