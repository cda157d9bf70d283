"""Elastic Beanstalk environments on AWS's clock: UpdateEnvironment and
DescribeConfigurationSettings (moto 5.2 has neither), environment properties per
environment, and an update that keeps the environment `Updating` for a while, during which
Beanstalk refuses any other update, as AWS does.

moto keeps applications and environments (CreateApplication, CreateEnvironment,
DescribeEnvironments), always `Ready`, without configuration. See rig/README.md."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from moto.core.responses import ActionResult
from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
from moto.elasticbeanstalk.responses import EBResponse

from .instances import _draw, _lock, _seconds_range, _utc

# From an accepted UpdateEnvironment until the new configuration is in effect and the
# environment is Ready again (an environment-property change: a configuration deployment
# that restarts the application on every instance, no instance replaced).
UPDATE_SECONDS = _seconds_range("RIG_EB_UPDATE_SECONDS", "30")
# Environment properties: what the application reads as environment variables.
ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
# A few of the settings every environment's configuration also holds, so a reader must
# pick its own option out of many, as with AWS (which answers a few hundred).
BASE_SETTINGS = {
    ("aws:autoscaling:asg", "MinSize"): "1",
    ("aws:autoscaling:asg", "MaxSize"): "4",
    ("aws:elasticbeanstalk:command", "DeploymentPolicy"): "AllAtOnce",
}


@dataclass
class Settings:
    """One environment's configuration: the one deployed, and the draft being deployed
    (DescribeConfigurationSettings answers both while an update runs)."""
    deployed: dict[tuple[str, str], str]
    created: float
    updated: float
    pending: dict[tuple[str, str], str] | None = None
    ready_at: float | None = None
    # UpdateEnvironment calls accepted (reported by the rig's log only).
    updates: list[float] = field(default_factory=list)


# (account, region, environment name) -> Settings
_settings: dict[tuple[str, str, str], Settings] = {}


def _key(backend, name: str) -> tuple[str, str, str]:
    return (backend.account_id, backend.region_name, name)


def _find(backend, name: str | None, application: str | None = None):
    """moto's environment named `name` (in `application` when given), or None."""
    for app in backend.applications.values():
        if application and app.application_name != application:
            continue
        env = app.environments.get(name or "")
        if env is not None:
            return env
    return None


def _model(backend, env) -> Settings:
    key = _key(backend, env.environment_name)
    settings = _settings.get(key)
    if settings is None:
        now = time.time()
        settings = Settings(deployed=dict(BASE_SETTINGS), created=now, updated=now)
        _settings[key] = settings
    return settings


def _advance(backend, env, now: float) -> Settings:
    """Moves the environment's update along to `now`, as Beanstalk does in the background:
    once deployed, the draft is in effect and the environment is Ready."""
    settings = _model(backend, env)
    if settings.ready_at is not None and now >= settings.ready_at:
        settings.deployed = settings.pending or settings.deployed
        settings.pending = None
        settings.updated = settings.ready_at
        settings.ready_at = None
        env.status = "Ready"
        env.abortable_operation_in_progress = False
        env.date_updated = _utc(settings.updated).replace(tzinfo=None)
    return settings


def _options(params: list[dict] | None) -> dict[tuple[str, str], str]:
    return {(o.get("Namespace", ""), o.get("OptionName", "")): o.get("Value", "")
            for o in params or []}


def _not_found(name: str | None) -> InvalidParameterValueError:
    return InvalidParameterValueError(f"No Environment found for EnvironmentName = '{name}'.")


_original_create_environment = EBResponse.create_environment
_original_describe_environments = EBResponse.describe_environments


def _create_environment(self):
    """moto's CreateEnvironment, keeping the OptionSettings given (moto drops them)."""
    with _lock:
        result = _original_create_environment(self)
        backend = self.elasticbeanstalk_backend
        env = _find(backend, self._get_param("EnvironmentName"), self._get_param("ApplicationName"))
        if env is not None:
            settings = _model(backend, env)
            settings.deployed.update(_options(self._get_param("OptionSettings", [])))
        return result


def _describe_environments(self):
    """moto's DescribeEnvironments, with the modelled status and the request's filters
    (EnvironmentNames, ApplicationName; moto answers every environment)."""
    with _lock:
        backend = self.elasticbeanstalk_backend
        now = time.time()
        names = self._get_param("EnvironmentNames") or []
        application = self._get_param("ApplicationName")
        envs = []
        for env in backend.describe_environments():
            _advance(backend, env, now)
            if names and env.environment_name not in names:
                continue
            if application and env.application_name != application:
                continue
            envs.append(env)
        return ActionResult({"Environments": envs})


def _update_environment(self):
    """UpdateEnvironment with OptionSettings: accepted only from a Ready environment (AWS's
    InvalidParameterValue otherwise); the environment is then Updating for
    RIG_EB_UPDATE_SECONDS and the new values are in effect after."""
    with _lock:
        backend = self.elasticbeanstalk_backend
        name = self._get_param("EnvironmentName")
        env = _find(backend, name, self._get_param("ApplicationName"))
        if env is None:
            raise _not_found(name)
        now = time.time()
        settings = _advance(backend, env, now)
        if env.status != "Ready":
            raise InvalidParameterValueError(
                f"Environment named {name} is in an invalid state for this operation. Must be Ready.")
        draft = dict(settings.deployed)
        draft.update(_options(self._get_param("OptionSettings", [])))
        for removed in self._get_param("OptionsToRemove", []) or []:
            draft.pop((removed.get("Namespace", ""), removed.get("OptionName", "")), None)
        settings.pending = draft
        settings.ready_at = now + _draw(UPDATE_SECONDS)
        settings.updates.append(now)
        env.status = "Updating"
        env.abortable_operation_in_progress = True
        env.date_updated = _utc(now).replace(tzinfo=None)
        return ActionResult(env)


def _description(env, settings: Settings, status: str,
                 options: dict[tuple[str, str], str]) -> dict:
    description = {
        "ApplicationName": env.application_name,
        "EnvironmentName": env.environment_name,
        "DeploymentStatus": status,
        "DateCreated": _utc(settings.created),
        "DateUpdated": _utc(settings.updated),
        "OptionSettings": [{"Namespace": ns, "OptionName": name, "Value": value}
                           for (ns, name), value in sorted(options.items())],
    }
    if env.solution_stack_name not in (None, "None"):  # moto stores the text "None"
        description["SolutionStackName"] = env.solution_stack_name
    return description


def _describe_configuration_settings(self):
    """The environment's configuration: `deployed`, and while an update runs the draft
    being deployed (`pending`), as AWS answers."""
    with _lock:
        backend = self.elasticbeanstalk_backend
        application = self._get_param("ApplicationName")
        name = self._get_param("EnvironmentName")
        if self._get_param("TemplateName"):
            raise InvalidParameterValueError("The rig models environment configurations only.")
        env = _find(backend, name, application)
        if env is None:
            raise _not_found(name)
        settings = _advance(backend, env, time.time())
        copies = [_description(env, settings, "deployed", settings.deployed)]
        if settings.pending is not None:
            copies.append(_description(env, settings, "pending", settings.pending))
        return ActionResult({"ConfigurationSettings": copies})


EBResponse.create_environment = _create_environment
EBResponse.describe_environments = _describe_environments
EBResponse.update_environment = _update_environment
EBResponse.describe_configuration_settings = _describe_configuration_settings
