#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment, `cdk synth -c env=NAME` just one."""

import sys

from aws_cdk import App

from stacks.app_builder import build_app
from stacks.environment_config import ConfigError


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ConfigError as error:
        sys.exit(f"Invalid environment table: {error}")
    app.synth()


if __name__ == "__main__":
    main()
