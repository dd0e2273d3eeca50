"""The suite's development package: what is not the product. Tests, benchmarks, the demo and the robustness
checks share it; the product (`ml_model_service`) never imports it.

- `paths`: where the repository's folders are; `system`: this machine (DDS isolation, memory, CPU name);
- `harness`: nodes in their own processes, a camera publisher, sensor messages, photographs, RGB-D scenes,
  exports of real models made by their exporters;
- `bench`: `make bench` (`python3 -m ml_model_service_dev.bench`), its rows in their own modules;
- `demo`: `make demo` (`python3 -m ml_model_service_dev.demo`);
- `robustness`: hostile inputs against running nodes (`python3 -m ml_model_service_dev.robustness`).

It is an ament_python package (`dev/package.xml`) that the bootstrap builds beside the product, so
`source env.sh` puts it on the path, as `install/setup.bash` does in a user's workspace. ROS modules are imported
where they are used, so a tool can set up its DDS domain (`system.isolate_dds`) before rclpy loads.
"""
