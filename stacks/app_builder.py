"""Builds the CDK app: one `MusicGen-<env>` stack per selected environment, checked by cdk-nag.

cdk-nag runs two rule packs on every stack: AwsSolutions and NIST 800-53 rev 5.
"""

from __future__ import annotations

from aws_cdk import App, Environment, Validations

from constructs_lib.container_image import UnsupportedContainerVersions, image_uris_by_region
from constructs_lib.nag_acknowledgements import nag_packs
from stacks.ci_roles_stack import ci_roles_stack_from_context
from stacks.environment_config import (
    ConfigError,
    EnvironmentConfig,
    load_environments,
    select_environments,
)
from stacks.musicgen_stack import MusicGenStack


def _check_container_versions(config: EnvironmentConfig) -> None:
    try:
        image_uris_by_region(
            transformers=config.dlc.transformers,
            pytorch=config.dlc.pytorch,
            instance_type=config.instance_type,
        )
    except UnsupportedContainerVersions as error:
        raise ConfigError(config.name, "dlc", str(error)) from None


def build_app(app: App) -> list[MusicGenStack]:
    """Read the `environments` table and `-c env=NAME` from context; add the stacks to `app`.

    With `-c github_repository=owner/name` the optional `MusicGen-ci` stack (pipeline roles for
    every environment of the table) is added too.
    """
    environments = load_environments(app.node.try_get_context("environments"))
    selected = select_environments(environments, app.node.try_get_context("env"))
    stacks = []
    for config in selected:
        _check_container_versions(config)
        stacks.append(
            MusicGenStack(
                app,
                config.stack_name,
                config=config,
                env=Environment(account=config.account, region=config.region),
                description=f"MusicGen {config.model_id} async endpoint ({config.name})",
            )
        )
    ci_roles_stack_from_context(app, environments)
    Validations.of(app).add_plugins(*nag_packs(app))
    return stacks
