"""`python3 -m ml_model_service_dev.bench [--only core|node|peer] ...`: `make bench`."""

from .suite import main

raise SystemExit(main())
