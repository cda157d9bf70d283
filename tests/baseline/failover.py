"""The baseline for the benchmarks: the seed recipe's Python failover Lambda, doing the
same job as regionpilot's failover function on an alarm (write the active-region parameter,
start the instance refresh), the way the blog recipe writes it with boto3.

It is deliberately the recipe, not regionpilot in Python: no compare-and-swap, no
pre-flight probe, no history. It writes every configured region (the recipe writes only
its own) so both sides do the same AWS calls against the rig.
"""

import os

import boto3
from botocore.config import Config

REGIONS = os.environ["REGIONS"].split(",")
PARAMETER = os.environ["ACTIVE_REGION_PARAMETER"]
GROUP = os.environ["AUTO_SCALING_GROUPS"]
ENDPOINTS = dict(e.split("=", 1) for e in os.environ.get("REGION_ENDPOINTS", "").split(",") if e)
CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3, "mode": "standard"})

# Clients are created once per instance, outside the handler, as Lambda's guide advises.
SSM = {r: boto3.client("ssm", region_name=r, endpoint_url=ENDPOINTS.get(r), config=CONFIG) for r in REGIONS}
ASG = {r: boto3.client("autoscaling", region_name=r, endpoint_url=ENDPOINTS.get(r), config=CONFIG) for r in REGIONS}


def alarmed_region(event):
    metrics = event["alarmData"]["configuration"]["metrics"]
    return metrics[0]["metricStat"]["metric"]["dimensions"]["Region"]


def handler(event, context):
    down = alarmed_region(event)
    target = next(r for r in REGIONS if r != down)
    for region in REGIONS:
        SSM[region].put_parameter(Name=PARAMETER, Value=target, Type="String", Overwrite=True)
    refreshes = {}
    for region in REGIONS:
        out = ASG[region].start_instance_refresh(
            AutoScalingGroupName=GROUP,
            Preferences={"MinHealthyPercentage": 90, "InstanceWarmup": 60},
        )
        refreshes[region] = out["InstanceRefreshId"]
    return {"outcome": "switched", "to": target, "refreshes": refreshes}
