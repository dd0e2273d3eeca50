"""python3 -m ml_model_service.core.settings CONFIG_DIR [README]: regenerate the parameter files in CONFIG_DIR,
the typed views (`typed.py`) and the parameter tables of README from the table."""

import sys
from pathlib import Path

from .files import README_TABLES, shipped_parameter_files, typed_module, update_readme

for name, text in shipped_parameter_files().items():
    (Path(sys.argv[1]) / name).write_text(text)
(Path(__file__).parent / "typed.py").write_text(typed_module())
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text(update_readme(sys.argv[2], README_TABLES))
