#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment, `cdk synth -c env=NAME` just one."""

import sys

from aws_cdk import App

from stacks.app_builder import build_app


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ValueError as error:  # ConfigError and bad CI-stack context: one line, no traceback
        sys.exit(f"Invalid configuration: {error}")
    app.synth()


if __name__ == "__main__":
    main()
