"""The parameters of both nodes, ROS-free: `params` (the `Param` class, tiers, validators), `tables` (the
table itself and the checks on a set of values), `typed` (its typed views, generated; base in `view`), `configs`
(settings made configuration objects) and `files` (the parameter files, README tables and typed views generated
from it). The top of `core`: it names the choices and
configuration classes of the layers below."""
