#!/usr/bin/env bash
# The project's static checks: lint, formatting, types, import contracts (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check src tests bench vectors
ruff format --check src tests bench vectors
mypy
lint-imports
