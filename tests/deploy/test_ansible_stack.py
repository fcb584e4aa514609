"""The Ansible playbooks against moto in server mode: syntax, the four-step check per role
(check-mode create, create, check-mode re-apply unchanged, re-apply unchanged), the resources'
settings read back with boto3, and destroy.yml leaving nothing behind.

Roles in deploy.yml: network, secrets, storage, registry, logging, iam, database, compute,
scaling, monitoring (build-images.yml runs between database and compute and says it skips: no
Docker engine here). Where a module skips in check mode on a resource that does not exist yet
(s3_bucket, s3_lifecycle, ecs_ecr: module behaviour), and for the roles that find the VPC by name
(database, compute, scaling, monitoring: nothing to find in a fresh account), step 1 proves only
that nothing is created and nothing fails; step 4 (changed=0) proves idempotence for them."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ANSIBLE_DIR,
    ANSIBLE_PLAYBOOK,
    Moto,
    needs_ansible,
    needs_moto,
    run_playbook,
    running_moto,
)

pytestmark = [needs_ansible, needs_moto]

ROLES = [
    "network",
    "secrets",
    "storage",
    "registry",
    "logging",
    "iam",
    "database",
    "compute",
    "scaling",
    "monitoring",
]
# roles whose modules report a would-be creation in check mode (the others skip: see above)
CHECK_MODE_REPORTS = ["network", "secrets", "logging", "iam"]
ACCOUNT = "123456789012"  # moto's; the playbooks read it from sts get-caller-identity
IMAGE_TAG = "0123456789ab"  # pinned: the default (git sha of the checkout) moves with commits
SERVICES = ("trading", "dashboard", "data-service")


def _deploy_extra(moto: Moto) -> tuple[str, ...]:
    """The per-environment inputs a real deploy gets from group_vars: the dashboard's ACM
    certificate (moto's load balancer accepts only certificates it knows) and the image tag."""
    acm = moto.client("acm")
    arn = acm.request_certificate(DomainName="dashboard.algo-trading.example.com")["CertificateArn"]
    return ("-e", f"compute_certificate_arn={arn}", "-e", f"image_tag={IMAGE_TAG}")


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _vpcs(moto: Moto, env: str) -> list[dict[str, Any]]:
    ec2 = moto.client("ec2")
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"algo-trading-{env}-vpc"]}])
    return list(found["Vpcs"])


def _leftovers(moto: Moto, env: str) -> list[str]:
    """Everything of `env` still in the account (empty after destroy.yml)."""
    left: list[str] = []
    prefix = f"algo-trading-{env}"
    left += [f"vpc {v['VpcId']}" for v in _vpcs(moto, env)]
    ec2 = moto.client("ec2")
    for a in ec2.describe_addresses()["Addresses"]:
        if _tags(a.get("Tags")).get("Environment") == env:
            left.append(f"eip {a['PublicIp']}")
    for n in ec2.describe_nat_gateways()["NatGateways"]:
        live = n["State"] in ("available", "pending")
        if live and _tags(n.get("Tags")).get("Environment") == env:
            left.append(f"nat {n['NatGatewayId']}")
    left += [
        f"bucket {b['Name']}"
        for b in moto.client("s3").list_buckets().get("Buckets", [])
        if b["Name"].startswith(prefix)
    ]
    left += [
        f"secret {s['Name']}"
        for s in moto.client("secretsmanager").list_secrets()["SecretList"]
        if s["Name"].startswith(prefix) and not s.get("DeletedDate")
    ]
    left += [
        f"ecr {r['repositoryName']}"
        for r in moto.client("ecr").describe_repositories()["repositories"]
        if r["repositoryName"].startswith(prefix)
    ]
    left += [
        f"log group {g['logGroupName']}"
        for g in moto.client("logs").describe_log_groups(
            logGroupNamePrefix=f"/algo-trading/{env}/"
        )["logGroups"]
    ]
    left += [
        f"role {r['RoleName']}"
        for r in moto.client("iam").list_roles()["Roles"]
        if r["RoleName"].startswith(prefix)
    ]
    rds = moto.client("rds")
    left += [
        f"db {d['DBInstanceIdentifier']}"
        for d in rds.describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(prefix)
    ]
    left += [
        f"db subnet group {g['DBSubnetGroupName']}"
        for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]
        if g["DBSubnetGroupName"].startswith(prefix)
    ]
    elb = moto.client("elbv2")
    left += [
        f"alb {lb['LoadBalancerName']}"
        for lb in elb.describe_load_balancers()["LoadBalancers"]
        if lb["LoadBalancerName"].startswith(prefix)
    ]
    left += [
        f"target group {t['TargetGroupName']}"
        for t in elb.describe_target_groups()["TargetGroups"]
        if t["TargetGroupName"].startswith(prefix)
    ]
    ecs = moto.client("ecs")
    left += [
        f"cluster {c['clusterName']}"
        for c in ecs.describe_clusters(clusters=[prefix])["clusters"]
        if c["status"] == "ACTIVE"
    ]
    left += [
        f"task definition {a}"
        for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
        if f":task-definition/{prefix}-" in a
    ]
    left += [
        f"scalable target {t['ResourceId']}"
        for t in moto.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs"
        )["ScalableTargets"]
        if t["ResourceId"].startswith(f"service/{prefix}/")
    ]
    cw = moto.client("cloudwatch")
    left += [
        f"alarm {a['AlarmName']}"
        for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    ]
    left += [
        f"dashboard {d['DashboardName']}"
        for d in cw.list_dashboards(DashboardNamePrefix=prefix)["DashboardEntries"]
    ]
    left += [
        f"topic {t['TopicArn']}"
        for t in moto.client("sns").list_topics()["Topics"]
        if t["TopicArn"].endswith(f":{prefix}-alarms")
    ]
    return left


def _sg(moto: Moto, vpc_id: str, name: str) -> dict[str, Any]:
    ec2 = moto.client("ec2")
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ]
    )["SecurityGroups"]
    assert len(groups) == 1, name
    return dict(groups[0])


def _ingress(group: dict[str, Any]) -> list[tuple[int, int, str]]:
    """(from port, to port, source) per ingress permission."""
    out = []
    for perm in group["IpPermissions"]:
        sources = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        sources += [p["GroupId"] for p in perm.get("UserIdGroupPairs", [])]
        sources += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        out += [(perm.get("FromPort"), perm.get("ToPort"), s) for s in sources]
    return sorted(out)


def verify_stack(moto: Moto, env: str, octet: int, nat_count: int, retention: int) -> None:
    """Read every resource back with boto3 and check the settings issue 7 asks for."""
    prefix = f"algo-trading-{env}"
    ec2 = moto.client("ec2")

    # network: VPC, subnets over two AZs, IGW, NAT with EIPs, routes, security groups, flow logs
    vpcs = _vpcs(moto, env)
    assert len(vpcs) == 1
    vpc = vpcs[0]
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == f"10.{octet}.0.0/16"
    assert _tags(vpc["Tags"])["Environment"] == env
    assert _tags(vpc["Tags"])["ManagedBy"] == "ansible"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_cidr = {s["CidrBlock"]: s for s in subnets}
    expected = {
        f"10.{octet}.1.0/24": ("ap-south-1a", True),
        f"10.{octet}.2.0/24": ("ap-south-1b", True),
        f"10.{octet}.10.0/24": ("ap-south-1a", False),
        f"10.{octet}.11.0/24": ("ap-south-1b", False),
    }
    assert set(by_cidr) == set(expected)
    for cidr, (az, public) in expected.items():
        assert by_cidr[cidr]["AvailabilityZone"] == az
        assert by_cidr[cidr]["MapPublicIpOnLaunch"] is public
        assert _tags(by_cidr[cidr]["Tags"])["Tier"] == ("public" if public else "private")
    igws = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    )["InternetGateways"]
    assert len(igws) == 1
    nats = [
        n
        for n in ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "NatGateways"
        ]
        if n["State"] == "available"
    ]
    assert len(nats) == nat_count
    public_ids = {by_cidr[f"10.{octet}.{i}.0/24"]["SubnetId"] for i in (1, 2)}
    assert {n["SubnetId"] for n in nats} <= public_ids
    assert len({n["SubnetId"] for n in nats}) == nat_count  # one per AZ when more than one
    for n in nats:
        assert _tags(n.get("Tags"))["Environment"] == env
        assert n["NatGatewayAddresses"][0]["PublicIp"]
    nat_ids = {n["NatGatewayId"] for n in nats}
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "RouteTables"
    ]
    default_route: dict[str, str] = {}
    for t in tables:
        for assoc in t["Associations"]:
            if "SubnetId" in assoc:
                for r in t["Routes"]:
                    if r.get("DestinationCidrBlock") == "0.0.0.0/0":
                        default_route[assoc["SubnetId"]] = r.get("GatewayId") or r.get(
                            "NatGatewayId", ""
                        )
    for cidr, (_, public) in expected.items():
        target = default_route[by_cidr[cidr]["SubnetId"]]
        if public:
            assert target == igws[0]["InternetGatewayId"]
        else:
            assert target in nat_ids

    alb = _sg(moto, vpc_id, f"{prefix}-alb")
    ecs = _sg(moto, vpc_id, f"{prefix}-ecs")
    rds = _sg(moto, vpc_id, f"{prefix}-rds")
    assert _ingress(alb) == [(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0")]
    assert _ingress(ecs) == [(8501, 8501, alb["GroupId"])]
    assert _ingress(rds) == [(5432, 5432, ecs["GroupId"])]

    flow = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    assert len(flow) == 1
    assert flow[0]["LogGroupName"] == f"/algo-trading/{env}/vpc-flow-logs"
    assert flow[0]["TrafficType"] == "ALL"
    assert flow[0]["DeliverLogsPermissionArn"].endswith(f":role/{prefix}-vpc-flow-logs")

    # storage
    s3 = moto.client("s3")
    bucket = f"{prefix}-data-{ACCOUNT}"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {
        "backtest-results-to-glacier",
        "logs-expire",
        "noncurrent-versions-expire",
    }
    glacier = rules["backtest-results-to-glacier"]
    assert glacier["Transitions"][0]["Days"] == 90
    assert glacier["Transitions"][0]["StorageClass"] == "GLACIER"
    assert rules["logs-expire"]["Expiration"]["Days"] == 30
    noncurrent = rules["noncurrent-versions-expire"]["NoncurrentVersionExpiration"]
    assert noncurrent["NoncurrentDays"] == 90
    assert _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])["Environment"] == env

    # secrets: the password was generated, never passed in
    sm = moto.client("secretsmanager")
    db = sm.describe_secret(SecretId=f"{prefix}-db-password")
    api = sm.describe_secret(SecretId=f"{prefix}-api-credentials")
    password = json.loads(sm.get_secret_value(SecretId=db["ARN"])["SecretString"])
    assert password["username"] == "algotrading"
    assert len(password["password"]) == 32 and password["password"].isalnum()
    assert set(json.loads(sm.get_secret_value(SecretId=api["ARN"])["SecretString"])) == set(
        ANGEL_ONE_KEYS
    )
    assert _tags(db["Tags"])["Environment"] == env

    # registry
    ecr = moto.client("ecr")
    repos = {
        r["repositoryName"]: r
        for r in ecr.describe_repositories()["repositories"]
        if r["repositoryName"].startswith(prefix + "/")
    }
    assert set(repos) == {f"{prefix}/trading", f"{prefix}/dashboard", f"{prefix}/data-service"}
    for name, repo in repos.items():
        assert repo["imageScanningConfiguration"]["scanOnPush"] is True
        assert repo["imageTagMutability"] == "IMMUTABLE"
        policy = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        assert [r["selection"]["tagStatus"] for r in policy["rules"]] == ["untagged", "any"]
        tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
        assert (tags["Environment"], tags["ManagedBy"]) == (env, "ansible")

    # logging
    logs = moto.client("logs")
    groups = {
        g["logGroupName"]: g
        for g in logs.describe_log_groups(logGroupNamePrefix=f"/algo-trading/{env}/")["logGroups"]
    }
    for svc in ("trading", "dashboard", "data-service"):
        assert groups[f"/algo-trading/{env}/{svc}"]["retentionInDays"] == retention

    # iam: least privilege, secrets by their real ARNs (the -?????? pattern matches exactly them)
    iam = moto.client("iam")
    execution = f"{prefix}-ecs-execution"
    attached = iam.list_attached_role_policies(RoleName=execution)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonECSTaskExecutionRolePolicy"]
    trust = iam.get_role(RoleName=execution)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"]["Service"] == "ecs-tasks.amazonaws.com"
    real_arns = {db["ARN"], api["ARN"]}
    services = ("trading", "dashboard", "data-service")
    all_roles = [execution] + [f"{prefix}-{s}-task" for s in services]
    for role in all_roles:
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for st in doc["Statement"]:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                if "*" in resources:  # only PutMetricData, narrowed to our namespace
                    assert st["Action"] == "cloudwatch:PutMetricData"
                    assert st["Condition"]["StringEquals"]["cloudwatch:namespace"] == "AlgoTrading"
                    continue
                for res in resources:
                    assert "*" not in res.split(":")[-1] or res.startswith("arn:aws:s3:::"), res
                    if ":secretsmanager:" in res:
                        matches = [a for a in real_arns if fnmatch.fnmatchcase(a, res)]
                        assert len(matches) == 1, (res, real_arns)
                    if res.startswith("arn:aws:s3:::"):
                        assert res.startswith(f"arn:aws:s3:::{bucket}")
    trading_doc = iam.get_role_policy(
        RoleName=f"{prefix}-trading-task", PolicyName="trading-permissions"
    )["PolicyDocument"]
    secret_res = [
        r
        for st in trading_doc["Statement"]
        if st["Action"] == "secretsmanager:GetSecretValue"
        for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    ]
    granted = {next(a for a in real_arns if fnmatch.fnmatchcase(a, r)) for r in secret_res}
    assert granted == real_arns
    dash_doc = iam.get_role_policy(
        RoleName=f"{prefix}-dashboard-task", PolicyName="dashboard-permissions"
    )["PolicyDocument"]
    dash_secret = [st for st in dash_doc["Statement"] if "secretsmanager" in str(st["Action"])]
    assert len(dash_secret) == 1 and "api-credentials" not in str(dash_secret[0]["Resource"])


# per environment: (instance class, multi-AZ, deletion protection), desired counts, scaling bounds
SERVICE_EXPECT: dict[str, dict[str, Any]] = {
    "dev": {
        "db": ("db.t3.micro", False, False),
        "desired": {"trading": 1, "dashboard": 1, "data-service": 1},
        "scaling": {"trading": (1, 2), "dashboard": (1, 1), "data-service": (1, 1)},
        "trading_command": ["run", "--continuous"],
    },
    "prod": {
        "db": ("db.t3.medium", True, True),
        "desired": {"trading": 2, "dashboard": 1, "data-service": 1},
        "scaling": {"trading": (2, 5), "dashboard": (1, 2), "data-service": (1, 2)},
        "trading_command": [
            "run",
            "--continuous",
            "--broker",
            "angelone",
            "--market",
            "live",
            "--scale-out",
        ],
    },
}
TASK_SIZES = {
    "trading": ("1024", "2048"),
    "dashboard": ("512", "1024"),
    "data-service": ("512", "1024"),
}


ANGEL_ONE_KEYS = (
    "ANGEL_ONE_API_KEY",
    "ANGEL_ONE_CLIENT_ID",
    "ANGEL_ONE_PASSWORD",
    "ANGEL_ONE_TOTP_SECRET",
)


def _injected(moto: Moto, container: dict[str, Any]) -> dict[str, str]:
    """The environment ECS gives the container: its variables, and each ``secrets`` entry
    (``<secret ARN>:<JSON key>::``) resolved from Secrets Manager as ECS resolves it."""
    sm = moto.client("secretsmanager")
    env = {e["name"]: e["value"] for e in container["environment"]}
    for item in container["secrets"]:
        arn, key = item["valueFrom"].rsplit(":", 3)[:2]
        doc = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        env[item["name"]] = str(doc[key])
    return env


def _engine_reads_what_the_task_injects(
    moto: Moto, container: dict[str, Any], db: dict[str, Any], password: dict[str, Any]
) -> None:
    """The contract between the task definition and the engine: from the environment ECS
    would inject, the engine builds the RDS URL with the generated credentials, and once an
    operator has set the Angel One keys in the secret (out of band), it reads them."""
    from sqlalchemy.engine import make_url

    from algoengine.brokers.angelone.credentials import load_credentials
    from algoengine.secrets import resolve_database_url

    url = make_url(resolve_database_url(None, None, env=_injected(moto, container)))
    assert (url.host, url.port) == (db["Endpoint"]["Address"], db["Endpoint"]["Port"])
    assert (url.username, url.password) == (password["username"], password["password"])
    assert url.database == "algotrading" and url.drivername == "postgresql+psycopg"
    sm = moto.client("secretsmanager")
    api_arn = container["secrets"][-1]["valueFrom"].rsplit(":", 3)[0]
    before = sm.get_secret_value(SecretId=api_arn)["SecretString"]
    keys = {
        "ANGEL_ONE_API_KEY": "set-out-of-band",
        "ANGEL_ONE_CLIENT_ID": "A765432",
        "ANGEL_ONE_PASSWORD": "9182",
        "ANGEL_ONE_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    }
    sm.put_secret_value(SecretId=api_arn, SecretString=json.dumps(keys))
    try:
        creds = load_credentials(env=_injected(moto, container))
        assert (creds.api_key, creds.client_code, creds.mpin) == (
            "set-out-of-band",
            "A765432",
            "9182",
        )
    finally:  # as deployed: empty values (the re-apply must find nothing changed)
        sm.put_secret_value(SecretId=api_arn, SecretString=before)


def verify_services(moto: Moto, env: str) -> None:
    """database, compute, scaling and monitoring read back with boto3 (issue 7's settings)."""
    prefix = f"algo-trading-{env}"
    expect = SERVICE_EXPECT[env]
    ec2 = moto.client("ec2")
    vpc_id = _vpcs(moto, env)[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tier = {s["SubnetId"]: _tags(s["Tags"])["Tier"] for s in subnets}
    private = {i for i, t in tier.items() if t == "private"}
    public = {i for i, t in tier.items() if t == "public"}
    sg_alb = _sg(moto, vpc_id, f"{prefix}-alb")["GroupId"]
    sg_ecs = _sg(moto, vpc_id, f"{prefix}-ecs")["GroupId"]
    sg_rds = _sg(moto, vpc_id, f"{prefix}-rds")["GroupId"]
    sm = moto.client("secretsmanager")
    db_secret = sm.describe_secret(SecretId=f"{prefix}-db-password")["ARN"]
    api_secret = sm.describe_secret(SecretId=f"{prefix}-api-credentials")["ARN"]

    # database: PostgreSQL 15 over the private subnets, the generated password
    rds = moto.client("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier=f"{prefix}-postgres")["DBInstances"][0]
    cls, multi_az, protected = expect["db"]
    assert db["Engine"] == "postgres" and db["EngineVersion"].split(".")[0] == "15"
    assert db["DBInstanceClass"] == cls
    assert db["MultiAZ"] is multi_az
    assert db["DeletionProtection"] is protected
    assert db["AllocatedStorage"] == 100 and db["StorageType"] == "gp3"
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] == 30
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [sg_rds]
    group = db["DBSubnetGroup"]
    assert group["DBSubnetGroupName"] == f"{prefix}-db"
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == private
    password = json.loads(sm.get_secret_value(SecretId=db_secret)["SecretString"])
    assert db["MasterUsername"] == password["username"]
    tags = _tags(rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"])["TagList"])
    assert tags["Environment"] == env

    # compute: ALB (HTTP redirects to HTTPS, HTTPS forwards to the dashboard target group)
    elb = moto.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{prefix}-alb"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing"
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == public
    assert lb["SecurityGroups"] == [sg_alb]
    tg = elb.describe_target_groups(Names=[f"{prefix}-dashboard"])["TargetGroups"][0]
    assert tg["Port"] == 8501 and tg["TargetType"] == "ip" and tg["VpcId"] == vpc_id
    assert tg["HealthCheckPath"] == "/_stcore/health"
    listeners = {
        ln["Port"]: ln
        for ln in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    }
    assert set(listeners) == {80, 443}
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"][0]["CertificateArn"].startswith("arn:aws:acm:ap-south-1:")
    assert https["DefaultActions"][0]["Type"] == "forward"
    assert https["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]

    # ECS cluster with Container Insights
    ecs = moto.client("ecs")
    cluster = ecs.describe_clusters(clusters=[prefix], include=["SETTINGS", "TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    assert {s["name"]: s["value"] for s in cluster["settings"]}["containerInsights"] == "enabled"
    assert "FARGATE" in cluster["capacityProviders"]
    assert {t["key"]: t["value"] for t in cluster["tags"]}["Environment"] == env

    # task definitions: sizes, images by tag, secrets by their exact ARNs, logs, read-only root
    iam = moto.client("iam")
    execution_arn = iam.get_role(RoleName=f"{prefix}-ecs-execution")["Role"]["Arn"]
    services = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster=prefix, services=list(SERVICES))["services"]
    }
    assert set(services) == set(SERVICES)
    for svc in SERVICES:
        service = services[svc]
        td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])[
            "taskDefinition"
        ]
        assert td["family"] == f"{prefix}-{svc}"
        assert (td["cpu"], td["memory"]) == TASK_SIZES[svc]
        assert td["networkMode"] == "awsvpc"
        assert "FARGATE" in td["requiresCompatibilities"]
        assert td["executionRoleArn"] == execution_arn
        assert td["taskRoleArn"] == iam.get_role(RoleName=f"{prefix}-{svc}-task")["Role"]["Arn"]
        assert [v["name"] for v in td["volumes"]] == ["tmp"]
        (c,) = td["containerDefinitions"]
        assert c["image"] == (
            f"{ACCOUNT}.dkr.ecr.ap-south-1.amazonaws.com/{prefix}/{svc}:{IMAGE_TAG}"
        )
        assert c["readonlyRootFilesystem"] is True
        assert c["user"] == "10001"
        assert c["mountPoints"] == [
            {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
        ]
        log = c["logConfiguration"]
        assert log["logDriver"] == "awslogs"
        assert log["options"]["awslogs-group"] == f"/algo-trading/{env}/{svc}"
        assert log["options"]["awslogs-region"] == "ap-south-1"
        assert c["healthCheck"]["command"][0] in ("CMD", "CMD-SHELL")
        secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
        assert secrets["ALGOENGINE_DB_PASSWORD"] == f"{db_secret}:password::"
        assert secrets["ALGOENGINE_DB_USERNAME"] == f"{db_secret}:username::"
        if svc == "dashboard":  # least privilege: no broker keys in the dashboard
            assert set(secrets) == {"ALGOENGINE_DB_USERNAME", "ALGOENGINE_DB_PASSWORD"}
            assert c["portMappings"][0]["containerPort"] == 8501
        else:
            for key in ANGEL_ONE_KEYS:  # the engine's names, in the environment and the secret
                assert secrets[key] == f"{api_secret}:{key}::"
            assert len(secrets) == 6
        env_vars = {e["name"]: e["value"] for e in c["environment"]}
        assert env_vars["ALGOENGINE_DB_HOST"] == db["Endpoint"]["Address"]
        assert password["password"] not in json.dumps(td)  # only the secret's ARN is named
        if svc == "trading":
            assert c["command"] == expect["trading_command"]
            _engine_reads_what_the_task_injects(moto, c, db, password)

        # services: Fargate across the private subnets, no public IP, desired count per env
        assert service["launchType"] == "FARGATE"
        assert service["desiredCount"] == expect["desired"][svc]
        vpc_conf = service["networkConfiguration"]["awsvpcConfiguration"]
        assert set(vpc_conf["subnets"]) == private
        assert vpc_conf["securityGroups"] == [sg_ecs]
        assert vpc_conf["assignPublicIp"] == "DISABLED"
        if svc == "dashboard":
            (binding,) = service["loadBalancers"]
            assert binding["targetGroupArn"] == tg["TargetGroupArn"]
            assert (binding["containerName"], binding["containerPort"]) == ("dashboard", 8501)
        else:
            assert service["loadBalancers"] == []

    # scaling: target tracking at 70% CPU, 60 s out / 300 s in, bounds per env
    aas = moto.client("application-autoscaling")
    targets = {
        t["ResourceId"]: t
        for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    }
    policies = {
        p["ResourceId"]: p
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    }
    for svc, (low, high) in expect["scaling"].items():
        rid = f"service/{prefix}/{svc}"
        assert (targets[rid]["MinCapacity"], targets[rid]["MaxCapacity"]) == (low, high)
        conf = policies[rid]["TargetTrackingScalingPolicyConfiguration"]
        assert policies[rid]["PolicyType"] == "TargetTrackingScaling"
        assert conf["TargetValue"] == 70
        assert conf["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
            "ECSServiceAverageCPUUtilization"
        )
        assert (conf["ScaleOutCooldown"], conf["ScaleInCooldown"]) == (60, 300)

    # monitoring: alarms to the SNS topic with the email subscription; the dashboard
    sns = moto.client("sns")
    topic = f"arn:aws:sns:ap-south-1:{ACCOUNT}:{prefix}-alarms"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [
        ("email", f"algo-trading-{env}-alerts@example.com")
    ]
    topic_tags = _tags(sns.list_tags_for_resource(ResourceArn=topic)["Tags"])
    assert (topic_tags["Environment"], topic_tags["ManagedBy"]) == (env, "ansible")
    cw = moto.client("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]}
    expected_alarms = {f"{prefix}-alb-5xx-rate"} | {
        f"{prefix}-{svc}-{kind}"
        for svc in SERVICES
        for kind in ("cpu-high", "memory-high", "tasks-below-desired")
    }
    assert set(alarms) == expected_alarms
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic]
    for svc in SERVICES:
        cpu = alarms[f"{prefix}-{svc}-cpu-high"]
        assert (cpu["Namespace"], cpu["MetricName"]) == ("AWS/ECS", "CPUUtilization")
        assert {d["Name"]: d["Value"] for d in cpu["Dimensions"]} == {
            "ClusterName": prefix,
            "ServiceName": svc,
        }
        mem = alarms[f"{prefix}-{svc}-memory-high"]
        assert mem["MetricName"] == "MemoryUtilization"
        low = alarms[f"{prefix}-{svc}-tasks-below-desired"]
        assert (low["MetricName"], low["ComparisonOperator"]) == (
            "RunningTaskCount",
            "LessThanThreshold",
        )
        assert low["Threshold"] == expect["scaling"][svc][0]
    rate = alarms[f"{prefix}-alb-5xx-rate"]
    assert rate["Threshold"] == 5 and rate["ComparisonOperator"] == "GreaterThanThreshold"
    suffix = lb["LoadBalancerArn"].split(":loadbalancer/")[1]
    metric_ids = {m["Id"]: m for m in rate["Metrics"]}
    assert metric_ids["requests"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": suffix}
    ]
    assert "requests" in metric_ids["rate"]["Expression"]
    body = json.loads(cw.get_dashboard(DashboardName=prefix)["DashboardBody"])
    assert len(body["widgets"]) == 2 * len(SERVICES) + 2


def _assert_ok(run: Any, what: str) -> None:
    assert run.returncode == 0 and run.failed() == 0, f"{what} failed:\n{run.output}"


@pytest.mark.parametrize("playbook", ["deploy.yml", "destroy.yml"])
def test_syntax_check(playbook: str) -> None:
    import subprocess

    assert ANSIBLE_PLAYBOOK is not None
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, playbook, "--syntax-check", "-e", "env=dev"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_environment_is_refused(moto: Moto, tmp_path: Path) -> None:
    run = run_playbook(moto, "deploy.yml", "qa", tmp_path)
    assert run.returncode != 0
    assert "-e env=dev, -e env=staging or -e env=prod (got qa)" in run.output


def _prod_cycle(moto: Moto, tmp_path: Path) -> None:
    """The prod checks (test_prod_has_a_nat_per_az_and_destroys_cleanly), run by prod_cycle."""
    extra = _deploy_extra(moto)
    run = run_playbook(moto, "deploy.yml", "prod", tmp_path, extra=extra)
    _assert_ok(run, "prod create")
    verify_stack(moto, "prod", octet=30, nat_count=2, retention=90)
    verify_services(moto, "prod")
    ips = [
        n["NatGatewayAddresses"][0]["PublicIp"]
        for n in moto.client("ec2").describe_nat_gateways()["NatGateways"]
        if n["State"] == "available"
    ]
    assert len(ips) == 2
    for ip in ips:  # the playbook prints the whitelist IPs
        assert ip in run.output
    # a tag-limited run touches only its role
    run = run_playbook(moto, "deploy.yml", "prod", tmp_path, extra=(*extra, "--tags", "storage"))
    _assert_ok(run, "prod storage only")
    assert set(run.counts) <= {"storage", "(play)"}, run.counts
    # repository tags changed out of band (library/ecr_tags.py): check mode reports
    # them and leaves them, a run puts them right
    ecr = moto.client("ecr")
    (repo,) = ecr.describe_repositories(repositoryNames=["algo-trading-prod/trading"])[
        "repositories"
    ]
    ecr.untag_resource(resourceArn=repo["repositoryArn"], tagKeys=["Environment"])
    ecr.tag_resource(resourceArn=repo["repositoryArn"], tags=[{"Key": "Owner", "Value": "x"}])
    drifted = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
    registry_only = (*extra, "--tags", "registry")
    retag = ["registry : Tag the image repositories"]
    run = run_playbook(moto, "deploy.yml", "prod", tmp_path, check=True, extra=registry_only)
    _assert_ok(run, "prod registry check")
    assert run.changed_tasks == {"registry": retag}, run.changed_tasks
    assert _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]) == drifted
    run = run_playbook(moto, "deploy.yml", "prod", tmp_path, extra=registry_only)
    _assert_ok(run, "prod registry retag")
    assert run.changed_tasks == {"registry": retag}, run.changed_tasks
    tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
    assert tags["Environment"] == "prod" and "Owner" not in tags
    # the prod database has deletion protection: destroy refuses without confirmation
    run = run_playbook(moto, "destroy.yml", "prod", tmp_path, extra=("--tags", "database"))
    assert run.returncode != 0
    assert "needs -e database_confirm_destroy=true" in run.output
    assert moto.client("rds").describe_db_instances()["DBInstances"]
    run = run_playbook(
        moto, "destroy.yml", "prod", tmp_path, extra=("-e", "database_confirm_destroy=true")
    )
    _assert_ok(run, "prod destroy")
    assert _leftovers(moto, "prod") == []
    # ... and keeps a final snapshot of it
    snapshots = moto.client("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBInstanceIdentifier"] for s in snapshots] == ["algo-trading-prod-postgres"]
    # prod keeps deleted secrets recoverable for 30 days
    sm = moto.client("secretsmanager")
    deleted = sm.describe_secret(SecretId="algo-trading-prod-db-password")
    assert deleted.get("DeletedDate")


@pytest.fixture(scope="module")
def prod_cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[None]]:
    """The prod cycle in a background thread on a moto server of its own, started by the first
    test that asks for it. The dev test asks too, so the two cycles share the machine's cores
    (most of the time is the modules' Python start-up and the AWS modules' fixed sleeps, not
    moto); the prod test waits for the outcome, assertion errors included."""
    with running_moto() as server, ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(_prod_cycle, server, tmp_path_factory.mktemp("prod"))


def _start_prod_alongside(request: pytest.FixtureRequest) -> None:
    """Start the prod cycle now if the prod test is selected too (it then waits for it)."""
    prod = "test_prod_has_a_nat_per_az_and_destroys_cleanly"
    if any(getattr(item, "originalname", item.name) == prod for item in request.session.items):
        request.getfixturevalue("prod_cycle")


def _check_mode_create(moto: Moto, tmp_path: Path) -> None:
    """Step 1: every role that can report would change, and nothing is created."""
    run = run_playbook(moto, "deploy.yml", "dev", tmp_path, check=True, extra=_deploy_extra(moto))
    _assert_ok(run, "check-mode create")
    for role in CHECK_MODE_REPORTS:
        assert run.changed(role) > 0, (role, run.counts)
    assert _leftovers(moto, "dev") == []


def test_dev_four_steps_verify_and_destroy(
    moto: Moto, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _start_prod_alongside(request)
    moto.reset()
    extra = _deploy_extra(moto)
    # 1. check-mode create on a fresh account, at the same time as 2. create on another one
    # (step 1 needs only an account without the stack; the two share the cores)
    with running_moto() as fresh, ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_check_mode_create, fresh, tmp_path)
        run = run_playbook(moto, "deploy.yml", "dev", tmp_path, extra=extra)
        first.result()

    # 2. create: every role changes something
    _assert_ok(run, "create")
    for role in ROLES:
        assert run.changed(role) > 0, (role, run.counts)
    assert "NAT gateway Elastic IPs of dev" in run.output
    assert "No Docker engine here" in run.output and "images NOT built" in run.output
    verify_stack(moto, "dev", octet=10, nat_count=1, retention=14)
    verify_services(moto, "dev")

    # 3. check-mode re-apply: nothing would change; 4. re-apply: nothing changes.
    # Both run at once on the stack step 2 left: the re-apply changing nothing (asserted) means
    # the stack stood still while the check-mode run read it, so that run's zero counts as much
    # as if it had run alone; a re-apply that changes something fails the test by itself.
    with ThreadPoolExecutor(max_workers=1) as pool:
        check = pool.submit(
            run_playbook, moto, "deploy.yml", "dev", tmp_path, check=True, extra=extra
        )
        run = run_playbook(moto, "deploy.yml", "dev", tmp_path, extra=extra)
        check_run = check.result()
    _assert_ok(check_run, "check-mode re-apply")
    assert {r: check_run.changed(r) for r in ROLES} == dict.fromkeys(ROLES, 0), (
        check_run.changed_tasks
    )
    _assert_ok(run, "re-apply")
    assert {r: run.changed(r) for r in ROLES} == dict.fromkeys(ROLES, 0), run.changed_tasks
    verify_stack(moto, "dev", octet=10, nat_count=1, retention=14)
    verify_services(moto, "dev")

    # destroy removes everything; a second destroy changes nothing
    run = run_playbook(moto, "destroy.yml", "dev", tmp_path)
    _assert_ok(run, "destroy")
    for role in ROLES:
        assert run.changed(role) > 0, (role, run.counts)
    assert _leftovers(moto, "dev") == []
    run = run_playbook(moto, "destroy.yml", "dev", tmp_path)
    _assert_ok(run, "second destroy")
    assert {r: run.changed(r) for r in ROLES} == dict.fromkeys(ROLES, 0), run.changed_tasks


def test_prod_has_a_nat_per_az_and_destroys_cleanly(prod_cycle: Future[None]) -> None:
    prod_cycle.result()


def test_ansible_lint_production_profile() -> None:
    import subprocess

    from .conftest import _tool

    lint = _tool("ansible-lint")
    if lint is None:
        pytest.skip("ansible-lint is not installed: pip install -e '.[deploy]'")
    proc = subprocess.run(
        [
            lint,
            "--offline",
            "--profile",
            "production",
            "deploy.yml",
            "destroy.yml",
            "build-images.yml",
            "roles",
        ],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]


def test_deploy_without_a_certificate_is_refused(moto: Moto, tmp_path: Path) -> None:
    run = run_playbook(
        moto, "deploy.yml", "dev", tmp_path, extra=("--tags", "compute", "-e", "image_tag=x")
    )
    assert run.returncode != 0
    assert (
        "compute_certificate_arn must be the ARN of the dashboard's ACM certificate" in run.output
    )


@pytest.mark.parametrize("playbook", ["build-images.yml"])
def test_build_images_syntax(playbook: str) -> None:
    import subprocess

    assert ANSIBLE_PLAYBOOK is not None
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, playbook, "--syntax-check", "-e", "env=dev"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
