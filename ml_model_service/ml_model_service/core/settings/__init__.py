"""The parameters of both nodes, ROS-free: `params` (the `Param` class, tiers, validators), `tables` (the
table itself and the checks on a set of values), `configs` (values made configuration objects) and `files`
(the parameter files and README tables generated from it). The top of `core`: it names the choices and
configuration classes of the layers below."""
