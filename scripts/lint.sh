#!/usr/bin/env bash
# The project's static checks: lint, formatting, types, import contracts (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check src tests bench scripts vectors
ruff format --check src tests bench scripts vectors
mypy
lint-imports
