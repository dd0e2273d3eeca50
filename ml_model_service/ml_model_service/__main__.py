"""`python3 -m ml_model_service ...` runs the offline command (see cli.py)."""

from .cli import main

main()
