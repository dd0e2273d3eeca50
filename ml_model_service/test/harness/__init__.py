"""The test and benchmark harness, shared by the tests and scripts/ (demo, benchmark, robustness), kept out of
the runtime package: nodes in their own processes (`processes`), a camera publisher (`camera`), the sensor
messages it sends (`messages`), real photographs (`photos`), ray-cast RGB-D scenes (`scenes`) and polling
(`waits`).

The tests find it on their path (pytest puts test/ there); a script puts test/ on sys.path first:
`sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ml_model_service" / "test"))`. ROS modules are
imported where they are used, so a script can set up its DDS domain after importing the harness."""
