"""The harness the tests, the benchmark, the demo and the robustness checks share: nodes in their own processes
(`processes`), a camera publisher (`camera`), the sensor messages it sends (`messages`), real photographs
(`photos`), ray-cast RGB-D scenes (`scenes`), polling (`waits`), a background-spun client node (`spinner`), and
real models made by their exporters (`exports`, `segmentation_exports`, `framework_exports`, running the scripts
in `../exporters/` in the exporters' own environments). ROS modules are imported where they are used."""
